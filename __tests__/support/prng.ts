// One seeded PRNG for tests and benchmarks (mulberry32): "random" cut points are the same on every run.
export { seededRandom } from '../../bench/lib/prng';

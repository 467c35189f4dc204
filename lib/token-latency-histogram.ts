/** The inter-token latency cells under their former name (bench/stages.ts measures them from here). */
export { HistogramCells as LatencyCells } from './histogram-metric';

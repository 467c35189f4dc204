import { inCI } from '../support/needs-tool';

/** When a test that needs Prometheus or Chromium may be skipped: only outside CI. */
test('CI is on for any value but empty, 0 and false', () => {
  expect([{ CI: 'true' }, { CI: '1' }, { CI: 'yes' }, { CI: 'TRUE' }].map((env) => inCI(env))).toEqual([true, true, true, true]);
  expect([{}, { CI: '' }, { CI: '0' }, { CI: 'false' }, { CI: 'False' }].map((env) => inCI(env))).toEqual([false, false, false, false, false]);
});

/**
 * Tests that need a program this repo cannot install through `npm ci` (Prometheus, a browser). A newcomer's
 * `npm test` must pass with what `npm ci` installs, so where the program is missing such a test is registered as
 * skipped, named with the one line that installs it, and a warning says so. CI installs the programs and sets
 * `CI`; there a missing program must not quietly turn into a skip, so the test is registered as usual and fails.
 */
export interface NeededTool {
  /** What is missing, for the message, e.g. "prometheus and promtool". */
  what: string;
  /** Whether it was found on this machine. */
  found: boolean;
  /** The one command that installs it. */
  install: string;
}

export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const flag = env.CI;
  return flag !== undefined && flag !== '' && flag !== '0' && flag.toLowerCase() !== 'false';
}

/**
 * `test` when the tool is there or when running in CI, else jest's `test.skip` (chosen here, at run time, from the
 * machine: the test body is never reached, and jest reports it as skipped under its name).
 */
export function testNeeding(tool: NeededTool): { run: boolean; test: jest.It; label: string } {
  const run = tool.found || inCI();
  const label = `needs ${tool.what}: ${tool.install}`;
  if (!run) {
    console.warn(`${tool.what} not found: skipping the tests that need it. Install it with: ${tool.install}`);
  }
  const register: jest.It = run ? test : test.skip;
  return { run, test: register, label };
}

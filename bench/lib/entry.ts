/**
 * How each bench command runs when started as a script: a failure is printed and sets a failing exit code (not an
 * unhandled rejection), and `cleanup`, such as stopping the child processes, runs whichever way the run ends.
 */
export function runMain(main: () => Promise<unknown>, cleanup?: () => void): void {
  const run = main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
  if (cleanup !== undefined) void run.finally(cleanup);
}

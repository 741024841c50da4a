#!/usr/bin/env node
/** The `leasehold` executable: see docs/cli.md. */
import { flushOutput, stderr } from './output.js';
import { main } from './program.js';
import { failRun } from './run.js';

// Nothing may end the supervisor of a running command behind its back: Node's warnings go through
// leasehold's own never-failing output, and an error nothing caught first ends the command (as a loss
// does) before leasehold exits 70.
process.removeAllListeners('warning');
process.on('warning', (warning) => stderr.line(`leasehold: ${warning.name}: ${warning.message}`));
process.on('uncaughtException', (error) => {
  if (failRun(error)) return;
  stderr.line(`leasehold: ${error.stack ?? error.message}`);
  void flushOutput().then(() => process.exit(70));
});

process.exit(await main(process.argv));

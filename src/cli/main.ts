#!/usr/bin/env node
/** The `leasehold` executable: see docs/cli.md. */
import { main } from './program.js';

process.exit(await main(process.argv));

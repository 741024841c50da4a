#!/usr/bin/env node
// Makes sure the browser test of the live page (test/integration/ui-browser.test.ts) finds a Chromium:
// prints its path and exits 0 when `chromium` (or `chromium-browser`, or $CHROMIUM_PATH) is there; as
// root on Debian/Ubuntu installs Debian's `chromium` package with apt-get, as ensure-etcd.mjs installs
// etcd; otherwise says how to install it and exits 1. Never downloads a browser build of its own.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

function find() {
  const explicit = process.env.CHROMIUM_PATH;
  if (explicit) return explicit;
  for (const name of ['chromium', 'chromium-browser']) {
    for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // next
      }
    }
  }
  return undefined;
}

let path = find();
if (path === undefined && process.getuid?.() === 0) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
  console.error("leasehold: chromium not found; installing Debian's chromium package with apt-get…");
  if (!apt(['install', '-y', '-qq', 'chromium'])) apt(['update', '-qq']) && apt(['install', '-y', '-qq', 'chromium']);
  path = find();
}
if (path === undefined) {
  console.error('leasehold: chromium not found and could not be installed; the live page is tested in a real headless Chromium.');
  console.error('  install it: sudo apt-get install -y chromium   (Debian/Ubuntu), or set CHROMIUM_PATH to a Chromium or Chrome binary');
  process.exit(1);
}
console.log(path);

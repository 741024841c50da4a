#!/usr/bin/env node
// Makes sure the tests, the demo and the benchmarks will find an etcd, before they start.
// Silent when ETCD_ENDPOINTS is set or `etcd` is on PATH, and `etcdctl` is too. As root on Debian/Ubuntu,
// installs Debian's etcd-server and etcd-client with apt-get. Otherwise accepts a running Docker daemon (testcontainers will start etcd),
// or prints how to install etcd and exits 1. Plain Node ESM, no dependencies.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Whether `name` is an executable on PATH. */
function onPath(name) {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .some((dir) => {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.error) {
    console.error(`leasehold: could not run ${command}: ${result.error.message}`);
    return 1;
  }
  return result.status ?? 1;
}

const haveEndpoints = (process.env.ETCD_ENDPOINTS ?? '').trim() !== '';
// etcdctl (Debian's etcd-client) is what the interop tests run beside leasehold: `etcdctl lock`/`elect`.
if ((haveEndpoints || onPath('etcd')) && onPath('etcdctl')) {
  process.exit(0);
}

if (process.getuid?.() === 0 && onPath('apt-get')) {
  console.error("leasehold: etcd or etcdctl not found; installing Debian's etcd-server and etcd-client with apt-get…");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const updated = run('apt-get', ['update'], { env });
  if (updated !== 0) process.exit(updated);
  process.exit(run('apt-get', ['install', '-y', 'etcd-server', 'etcd-client'], { env }));
}

if (haveEndpoints || onPath('etcd')) {
  console.error('leasehold: etcdctl not found; the interop tests (etcdctl lock/elect) will fail. Install it:');
  console.error('  sudo apt-get install -y etcd-client   (Debian/Ubuntu)    brew install etcd   (macOS)');
  process.exit(0);
}

if (onPath('docker') && spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 15_000 }).status === 0) {
  process.exit(0); // startEtcd() will run etcd in a container through testcontainers.
}

console.error(`leasehold: etcd not found. The tests, demo and benchmarks need a real etcd. Either:

  install it (Debian/Ubuntu):   sudo apt-get install -y etcd-server etcd-client
  install it (macOS):           brew install etcd
  use an existing cluster:      export ETCD_ENDPOINTS=http://127.0.0.1:2379
  or start a Docker daemon, and etcd will run in a container (testcontainers).
`);
process.exit(1);

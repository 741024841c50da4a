/**
 * Linux network namespaces for network faults, with the kernel's own tools (`ip`, `tc`): one namespace
 * per node (an etcd member, a side where clients run, the harness's own "admin" side), each with one
 * veth link to a bridge that lives in a namespace of its own. Every address is link-local
 * (169.254.100.0/24) and exists only inside these namespaces; no route leads out of them, and nothing
 * of the host's own network is touched.
 *
 * A cut is kernel-level: on the bridge's port towards `to`, an HTB root qdisc sends packets whose
 * source is `from` to a class whose queue holds zero packets (`pfifo limit 0`), so they are dropped —
 * one direction of one link, with no RST and no ICMP, as a real partition behaves. (This kernel has no
 * `netem` and no `gact` drop action; HTB, pfifo and the u32 classifier are what it offers, and
 * {@link NetnsTopology.create} checks for them.)
 *
 * Names carry the creating process's pid (`lh<pid>-<random>-<node>`), so concurrent runs never collide
 * and a later run can delete what a run killed with no chance to clean up left behind.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Reaper } from './reaper.js';

const run = promisify(execFile);

/** The bridge's name in its namespace, and the first three octets of every address. */
const BRIDGE = 'br0';
const SUBNET = '169.254.100';

/** Runs `ip` or `tc` with `args` (and `input` as its batch file on stdin); rejects with its stderr. */
async function tool(command: 'ip' | 'tc', args: string[], input?: string): Promise<string> {
  const child = run(command, args, { timeout: 10_000 });
  if (input !== undefined) {
    child.child.stdin?.on('error', () => undefined);
    child.child.stdin?.end(input);
  }
  try {
    return (await child).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`\`${command} ${args.join(' ')}\` failed: ${stderr || (error as Error).message}`, { cause: error });
  }
}

/** Why network namespaces cannot be used here, in one line, or `undefined` when they can. */
export function netnsUnavailable(): Promise<string | undefined> {
  probed ??= probe();
  return probed;
}
let probed: Promise<string | undefined> | undefined;

/**
 * Asks the kernel rather than guess from the uid: root in a container without CAP_NET_ADMIN (or with
 * /run/netns not mountable) cannot make namespaces either. The probe's namespace carries this
 * process's pid like every other, so a later run deletes it if this one dies meanwhile.
 */
async function probe(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add); run as root, as CI does';
  try {
    await tool('ip', ['-V']);
    await tool('tc', ['-V']);
  } catch {
    return 'the `ip` and `tc` commands (iproute2) are not installed';
  }
  const ns = `lh${process.pid}-${randomBytes(3).toString('hex')}-probe`;
  try {
    await tool('ip', ['netns', 'add', ns]);
    await tool('ip', ['-n', ns, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb']);
    return undefined;
  } catch (error) {
    return (error as Error).message.replace(/\s+/g, ' ');
  } finally {
    await tool('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
}

/** Deletes the namespaces of earlier runs whose creating process is gone (a run that was SIGKILLed with its watchdog). */
async function sweepStale(): Promise<void> {
  const listed = await tool('ip', ['netns', 'list']).catch(() => '');
  for (const line of listed.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = /^lh(\d+)-[0-9a-f]{6}-/.exec(name)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    await tool('ip', ['netns', 'del', name]).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One node: its namespace, its address, and the bridge port that leads to it. */
interface Node {
  name: string;
  ns: string;
  address: string;
  /** The veth end in the bridge's namespace; a cut towards this node is a filter on its egress. */
  port: string;
  /** The u32 filter priority that matches packets from this node (unique per node). */
  prio: number;
}

/** The namespaces, links and cuts of one run. */
export class NetnsTopology {
  readonly prefix: string;
  readonly #bridgeNs: string;
  readonly #nodes = new Map<string, Node>();
  /** Directed cuts `from→to` in force. */
  readonly #cuts = new Set<string>();
  /** Ports that carry the drop qdisc now. */
  readonly #shaped = new Set<string>();

  private constructor(prefix: string) {
    this.prefix = prefix;
    this.#bridgeNs = `${prefix}-br`;
  }

  /**
   * Creates the bridge namespace and one namespace per node in `nodes` (addresses from .10 up, in
   * order) and checks that the kernel can drop packets with tc. Every namespace is registered with
   * `reaper` before it exists: `reaper.dispose()` (or Node's death) kills what runs inside and deletes
   * them, also after a failure here.
   */
  static async create(nodes: readonly string[], reaper: Reaper): Promise<NetnsTopology> {
    const reason = await netnsUnavailable();
    if (reason !== undefined) throw new Error(`Cannot create network namespaces: ${reason}`);
    await sweepStale();
    const topology = new NetnsTopology(`lh${process.pid}-${randomBytes(3).toString('hex')}`);
    nodes.forEach((name, i) => {
      const prio = i + 1;
      topology.#nodes.set(name, { name, ns: `${topology.prefix}-${name}`, address: `${SUBNET}.${10 + i}`, port: `p${prio}`, prio });
    });
    const namespaces = [topology.#bridgeNs, ...[...topology.#nodes.values()].map((n) => n.ns)];
    for (const ns of namespaces) reaper.trackNetns(ns);
    await tool('ip', ['-batch', '-'], namespaces.map((ns) => `netns add ${ns}\n`).join(''));
    await topology.#link();
    await topology.#checkTc();
    return topology;
  }

  /** The node names, in the order given to {@link create}. */
  get nodes(): string[] {
    return [...this.#nodes.keys()];
  }

  /** Every namespace of this run (the bridge's first). */
  get namespaces(): string[] {
    return [this.#bridgeNs, ...[...this.#nodes.values()].map((n) => n.ns)];
  }

  /** The node's link-local address. */
  address(node: string): string {
    return this.#node(node).address;
  }

  /** The command prefix that runs a program inside `node`'s namespace. */
  command(node: string): string[] {
    return ['ip', 'netns', 'exec', this.#node(node).ns];
  }

  /** The directed cuts in force, as `[from, to]`. */
  get cuts(): [string, string][] {
    return [...this.#cuts].map((c) => c.split('>') as [string, string]);
  }

  /** Drops every packet from `from` to `to` for each pair (those already cut stay so), in one tc batch. */
  async cut(pairs: readonly (readonly [string, string])[]): Promise<void> {
    const lines: string[] = [];
    for (const [from, to] of pairs) {
      const source = this.#node(from);
      const target = this.#node(to);
      if (from === to || this.#cuts.has(`${from}>${to}`)) continue;
      if (!this.#shaped.has(target.port)) {
        lines.push(...dropQdisc(target.port));
        this.#shaped.add(target.port);
      }
      lines.push(`filter add dev ${target.port} parent 1: protocol ip prio ${source.prio} u32 match ip src ${source.address}/32 classid 1:20`);
      this.#cuts.add(`${from}>${to}`);
    }
    if (lines.length > 0) await this.#tc(lines);
  }

  /** Restores every link. */
  async heal(): Promise<void> {
    const lines = [...this.#shaped].map((port) => `qdisc del dev ${port} root`);
    this.#shaped.clear();
    this.#cuts.clear();
    if (lines.length > 0) await this.#tc(lines);
  }

  #node(name: string): Node {
    const node = this.#nodes.get(name);
    if (!node) throw new TypeError(`Expected a node of this network (${this.nodes.join(', ')}), got \`${String(name)}\``);
    return node;
  }

  async #tc(lines: string[]): Promise<void> {
    await tool('tc', ['-n', this.#bridgeNs, '-batch', '-'], lines.map((l) => `${l}\n`).join(''));
  }

  /** The bridge, one veth pair per node (the node's end is `eth0`), addresses, and every link up. */
  async #link(): Promise<void> {
    const bridge = [`link add ${BRIDGE} type bridge`, `link set ${BRIDGE} up`];
    for (const n of this.#nodes.values()) {
      bridge.push(`link add ${n.port} type veth peer name eth0 netns ${n.ns}`, `link set ${n.port} master ${BRIDGE}`, `link set ${n.port} up`);
    }
    await tool('ip', ['-n', this.#bridgeNs, '-batch', '-'], bridge.map((l) => `${l}\n`).join(''));
    await Promise.all(
      [...this.#nodes.values()].map(async (n) =>
        tool('ip', ['-n', n.ns, '-batch', '-'], `addr add ${n.address}/24 dev eth0\nlink set eth0 up\nlink set lo up\n`),
      ),
    );
  }

  /** Installs and removes a drop filter on the first port: fails now, clearly, if the kernel lacks HTB, pfifo or u32. */
  async #checkTc(): Promise<void> {
    const port = [...this.#nodes.values()][0]?.port;
    if (port === undefined) return;
    try {
      await this.#tc([...dropQdisc(port), `filter add dev ${port} parent 1: protocol ip prio 99 u32 match ip src ${SUBNET}.254/32 classid 1:20`, `qdisc del dev ${port} root`]);
    } catch (error) {
      throw new Error(`This kernel cannot drop packets with tc (HTB qdisc, pfifo and the u32 classifier are needed): ${(error as Error).message}`, { cause: error });
    }
  }
}

/** tc lines that give `port` an HTB root whose class 1:20 drops everything (class 1:10, the default, passes). */
function dropQdisc(port: string): string[] {
  return [
    `qdisc add dev ${port} root handle 1: htb default 10 r2q 100000`,
    `class add dev ${port} parent 1: classid 1:10 htb rate 10gbit`,
    `class add dev ${port} parent 1: classid 1:20 htb rate 10gbit`,
    `qdisc add dev ${port} parent 1:20 handle 20: pfifo limit 0`,
  ];
}


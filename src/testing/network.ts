import type { EtcdMember } from './cluster.js';
import { Gateway, type Target } from './gateway.js';
import { NetnsTopology } from './netns.js';
import type { Reaper } from './reaper.js';

/** A node of an {@link EtcdNetwork}: a member (by name, `m0`…, or the member itself) or a side. */
export type NetworkNode = string | EtcdMember;

/**
 * The network of a cluster started with `startEtcd({ network: true })`: every member and every side
 * (a place where clients run) in a Linux network namespace of its own, linked through one bridge, and
 * links that can be cut — kernel-level, by dropping packets with tc — both ways or one way.
 *
 * This process stays outside: `cluster.client()`, `cluster.endpoints` and every member's `clientUrl`
 * lead through an "admin" side that no fault ever cuts. To put a client where faults hit it, run it
 * in a side (`command(side)` prefixes a program so that it runs there, and it reaches member `m` at
 * `url(m)`), or reach the members as a side does from this process with `endpoints(side)` (a
 * user-space hop inside the side's namespace; the cuts apply beyond it).
 */
export interface EtcdNetwork {
  /** The sides, as given in `network.sides` (default `['client']`). */
  readonly sides: readonly string[];
  /** The directed links cut now, as `[from, to]` node names. */
  readonly cuts: readonly (readonly [string, string])[];
  /**
   * A member's client URL inside the network, such as `http://169.254.100.10:2379`: what a process
   * running in a side connects to.
   */
  url(member: NetworkNode): string;
  /** The link-local address of a member or side. */
  address(node: NetworkNode): string;
  /**
   * The command prefix that runs a program inside `side`'s namespace (`ip netns exec <name>`); put
   * the program and its arguments after it. A process left running there is killed when the cluster stops.
   */
  command(side: string): string[];
  /**
   * Client URLs, one per member, through which this process reaches the members the way a client in
   * `side` does: cut `side` from a member and that endpoint goes silent.
   */
  endpoints(side: string): Promise<string[]>;
  /**
   * Drops every packet between the nodes of `a` and those of `b` — only from `a` to `b` with
   * `{ oneWay: true }` (requests arrive, answers do not, or the reverse). Links already cut stay cut.
   * @throws {TypeError} For a node that is not in this network.
   */
  cut(a: NetworkNode | readonly NetworkNode[], b: NetworkNode | readonly NetworkNode[], options?: { oneWay?: boolean }): Promise<void>;
  /** Splits the network: nodes in different groups cannot reach each other; a node in no group keeps its links. */
  partition(...groups: readonly (readonly NetworkNode[])[]): Promise<void>;
  /** Cuts `node` off from every other member and side, both ways. */
  isolate(node: NetworkNode): Promise<void>;
  /** Restores every link. TCP connections that were stalled resume (after their retransmission backoff). */
  heal(): Promise<void>;
}

/** The `network` option of `startEtcd()`. */
export interface NetworkOptions {
  /**
   * Names of the sides to create: one namespace each, for clients that faults should reach. Lower-case
   * letters and digits, starting with a letter, at most 12 characters.
   * @default ['client']
   */
  sides?: readonly string[];
}

/** Where each member listens inside the network, and how this process reaches it. */
export interface NetworkMemberSpec {
  listen: { client: string; peer: string; metrics: string };
  reach: { client: string; metrics: string };
  command: string[];
}

const ADMIN = 'admin';
const CLIENT_PORT = 2379;
const PEER_PORT = 2380;
const METRICS_PORT = 2381;

/** Checks the `network` option, naming a bad value; resolves it to the list of sides, or `undefined`. */
export function resolveNetwork(network: unknown, show: (value: unknown) => string): string[] | undefined {
  if (network === undefined || network === false) return undefined;
  if (network === true) return ['client'];
  if (typeof network !== 'object' || network === null) {
    throw new TypeError(`Expected \`network\` to be a boolean or { sides }, got \`${show(network)}\``);
  }
  const sides = (network as NetworkOptions).sides ?? ['client'];
  if (!Array.isArray(sides) || sides.length === 0) throw new TypeError(`Expected \`network.sides\` to be a non-empty array of names, got \`${show(sides)}\``);
  for (const side of sides as unknown[]) {
    if (typeof side !== 'string' || !/^[a-z][a-z0-9]{0,11}$/.test(side) || side === ADMIN || /^m\d+$/.test(side)) {
      throw new TypeError(`Expected each of \`network.sides\` to be a name of lower-case letters and digits (at most 12, not \`admin\` or a member name like \`m0\`), got \`${show(side)}\``);
    }
  }
  if (new Set(sides).size !== sides.length) throw new TypeError(`Expected \`network.sides\` to have no duplicates, got \`${show(sides)}\``);
  return [...(sides as string[])];
}

/** The network of one cluster: its namespaces, the admin gateway, and the sides' gateways. */
export class Network implements EtcdNetwork {
  readonly sides: readonly string[];
  readonly #members: readonly string[];
  readonly #topology: NetnsTopology;
  readonly #reaper: Reaper;
  readonly #admin: Gateway;
  readonly #gateways = new Map<string, Promise<Gateway>>();

  private constructor(members: readonly string[], sides: readonly string[], topology: NetnsTopology, admin: Gateway, reaper: Reaper) {
    this.sides = sides;
    this.#members = members;
    this.#topology = topology;
    this.#admin = admin;
    this.#reaper = reaper;
  }

  /** Creates the namespaces of `members` and `sides` (and the admin side) and the admin gateway. */
  static async create(members: readonly string[], sides: readonly string[], reaper: Reaper): Promise<Network> {
    const topology = await NetnsTopology.create([...members, ADMIN, ...sides], reaper);
    const targets = members.flatMap((m) => [CLIENT_PORT, METRICS_PORT].map((port) => ({ host: topology.address(m), port })));
    const admin = await Gateway.start(topology.command(ADMIN), targets, reaper);
    return new Network(members, sides, topology, admin, reaper);
  }

  /** The flags, host URLs and command of member `name`. */
  memberSpec(name: string): NetworkMemberSpec {
    const host = this.#topology.address(name);
    const at = (port: number): string => `http://${host}:${port}`;
    return {
      listen: { client: at(CLIENT_PORT), peer: at(PEER_PORT), metrics: at(METRICS_PORT) },
      reach: { client: this.#admin.url({ host, port: CLIENT_PORT }), metrics: this.#admin.url({ host, port: METRICS_PORT }) },
      command: this.#topology.command(name),
    };
  }

  get cuts(): [string, string][] {
    return this.#topology.cuts;
  }

  url(member: NetworkNode): string {
    return `http://${this.#topology.address(this.#member(member))}:${CLIENT_PORT}`;
  }

  address(node: NetworkNode): string {
    return this.#topology.address(this.#node(node));
  }

  command(side: string): string[] {
    return this.#topology.command(this.#side(side));
  }

  async endpoints(side: string): Promise<string[]> {
    let gateway = this.#gateways.get(this.#side(side));
    if (!gateway) {
      const targets: Target[] = this.#members.map((m) => ({ host: this.#topology.address(m), port: CLIENT_PORT }));
      gateway = Gateway.start(this.#topology.command(side), targets, this.#reaper);
      this.#gateways.set(side, gateway);
    }
    const started = await gateway;
    return this.#members.map((m) => started.url({ host: this.#topology.address(m), port: CLIENT_PORT }));
  }

  async cut(a: NetworkNode | readonly NetworkNode[], b: NetworkNode | readonly NetworkNode[], options: { oneWay?: boolean } = {}): Promise<void> {
    const from = this.#nodes(a);
    const to = this.#nodes(b);
    const pairs = from.flatMap((x) => to.flatMap((y): [string, string][] => (options.oneWay === true ? [[x, y]] : [[x, y], [y, x]])));
    await this.#topology.cut(pairs);
  }

  async partition(...groups: readonly (readonly NetworkNode[])[]): Promise<void> {
    const named = groups.map((g) => this.#nodes(g));
    const pairs: [string, string][] = [];
    named.forEach((group, i) => {
      for (const other of named.filter((_, j) => j !== i)) for (const x of group) for (const y of other) pairs.push([x, y]);
    });
    await this.#topology.cut(pairs);
  }

  async isolate(node: NetworkNode): Promise<void> {
    const name = this.#node(node);
    await this.cut(name, [...this.#members, ...this.sides].filter((n) => n !== name));
  }

  async heal(): Promise<void> {
    await this.#topology.heal();
  }

  #nodes(nodes: NetworkNode | readonly NetworkNode[]): string[] {
    return (Array.isArray(nodes) ? (nodes as readonly NetworkNode[]) : [nodes as NetworkNode]).map((n) => this.#node(n));
  }

  #node(node: NetworkNode): string {
    const name = typeof node === 'string' ? node : node?.name;
    if (name === undefined || (!this.#members.includes(name) && !this.sides.includes(name))) {
      throw new TypeError(`Expected a member or side of this network (${[...this.#members, ...this.sides].join(', ')}), got \`${String(name ?? node)}\``);
    }
    return name;
  }

  #member(member: NetworkNode): string {
    const name = this.#node(member);
    if (!this.#members.includes(name)) throw new TypeError(`Expected a member of this network (${this.#members.join(', ')}), got the side \`${name}\``);
    return name;
  }

  #side(side: string): string {
    if (!this.sides.includes(side)) throw new TypeError(`Expected a side of this network (${this.sides.join(', ')}), got \`${String(side)}\``);
    return side;
  }
}

import { readFileSync } from 'node:fs';

/**
 * Reads a V8 `.heapsnapshot` and totals self sizes per kind of object, so two snapshots of the same server (idle,
 * then with N streams held) say what each in-flight stream keeps alive, by constructor.
 */

interface RawSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export type HeapCensus = Map<string, { count: number; bytes: number }>;

const STRING_TYPES = new Set(['string', 'concatenated string', 'sliced string']);

export function heapCensus(file: string): HeapCensus {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as RawSnapshot;
  const fields = raw.snapshot.meta.node_fields;
  const types = raw.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const census: HeapCensus = new Map();
  for (let i = 0; i < raw.nodes.length; i += width) {
    const type = types[raw.nodes[i + typeAt] as number] ?? 'unknown';
    const name = raw.strings[raw.nodes[i + nameAt] as number] ?? '';
    // Strings are grouped by kind (their names are their contents); objects and closures by constructor name.
    const key = STRING_TYPES.has(type) ? `(${type})` : type === 'object' || type === 'closure' ? `${name} (${type})` : `(${type}) ${type === 'array' || type === 'hidden' ? name : ''}`.trim();
    const entry = census.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += raw.nodes[i + sizeAt] as number;
    census.set(key, entry);
  }
  return census;
}

/** (after − before) per unit, largest first. */
export function censusDiff(before: HeapCensus, after: HeapCensus, units: number): { key: string; count: number; bytes: number }[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys]
    .map((key) => {
      const a = after.get(key) ?? { count: 0, bytes: 0 };
      const b = before.get(key) ?? { count: 0, bytes: 0 };
      return { key, count: (a.count - b.count) / units, bytes: (a.bytes - b.bytes) / units };
    })
    .sort((x, y) => y.bytes - x.bytes);
}

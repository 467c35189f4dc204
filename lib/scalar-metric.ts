import type { MetricValue, Registry } from 'prom-client';
import { braced, labelText, preformattedTextMatches, SampleLines } from './exposition';
import type { ForEach, Labels, MetricData } from './exposition';

/**
 * One series of a counter or gauge as a plain number: the store adds to it per request, a scrape reads it. Its
 * labels and their rendered text are built once, when the series is first counted.
 */
export class ScalarCell {
  value = 0;
  /** Printed at all: as in prom-client, a labelled series exists from its first update until a reset. */
  exists: boolean;
  /** The rendered labels with their braces (`{model="m"}`), or nothing for a series without labels. */
  readonly labelPart: string;

  constructor(
    readonly labels: Labels,
    /** A series without labels always exists (prom-client shows it at 0 from the start and after a reset). */
    private readonly existsAtZero = false,
  ) {
    this.labelPart = braced(labelText(labels));
    this.exists = existsAtZero;
  }

  add(delta: number): void {
    this.value += delta;
    this.exists = true;
  }

  reset(): void {
    this.value = 0;
    this.exists = this.existsAtZero;
  }
}

/**
 * Cells keyed by their label values, for series with several labels. The key is built by the caller from the
 * label values (which must not contain the separator it uses); the label object is only built on a miss.
 */
export class KeyedCells {
  private readonly cells = new Map<string, ScalarCell>();

  get(key: string): ScalarCell | undefined {
    return this.cells.get(key);
  }

  create(key: string, labels: Labels): ScalarCell {
    const cell = new ScalarCell(labels);
    this.cells.set(key, cell);
    return cell;
  }

  forEach(visit: (cell: ScalarCell) => void): void {
    for (const cell of this.cells.values()) visit(cell);
  }
}

/**
 * A counter or gauge read from {@link ScalarCell}s at scrape time. It has the shape prom-client's registry (and
 * its cluster `AggregatorRegistry`) expects of a metric: `name`, `help`, `type`, `aggregator`, `get()`, `reset()`,
 * and `getForPromString()` for the text exposition.
 */
export class ScalarMetric {
  readonly aggregator = 'sum';

  constructor(
    /** Not readonly: an OpenMetrics registry strips `_total` from a counter's name when it renders. */
    public name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    readonly labelNames: readonly string[],
    private readonly registry: Registry,
    /** Every cell of the metric, current as of the call (the store moves hot-path numbers in as it visits). */
    private readonly eachCell: ForEach<ScalarCell>,
  ) {}

  get(): MetricData {
    const values: MetricValue<string>[] = [];
    this.eachCell((cell) => {
      if (cell.exists) values.push({ value: cell.value, labels: cell.labels });
    });
    return this.data(values);
  }

  getForPromString(): MetricData {
    if (!preformattedTextMatches(this.registry, this.type)) return this.get();
    const lines = new SampleLines();
    this.eachCell((cell) => {
      if (cell.exists) lines.add(this.name + cell.labelPart, cell.value);
    });
    return this.data(lines.values());
  }

  reset(): void {
    this.eachCell((cell) => cell.reset());
  }

  private data(values: MetricValue<string>[]): MetricData {
    return { help: this.help, name: this.name, type: this.type, values, aggregator: this.aggregator };
  }
}

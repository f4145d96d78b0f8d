/**
 * A reader of Prometheus' text exposition format (version 0.0.4) for tests:
 * families with their HELP and TYPE, and each sample with its labels. Strict:
 * a line it cannot read fails the test rather than being skipped.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

/** Families by name; a histogram's _bucket/_sum/_count samples belong to its family. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let found = families.get(name);
    if (found === undefined) {
      found = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, found);
    }
    return found;
  };
  for (const [number, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      const existing = family(name);
      families.set(name, kind === 'HELP' ? { ...existing, help: rest } : { ...existing, type: rest });
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`line ${number + 1} is not a sample: ${line}`);
    const [, name, labelText, valueText] = match as unknown as [string, string, string | undefined, string];
    // As Prometheus reads them (Go's ParseFloat): NaN in any case (prom-client writes "Nan" before the first sample).
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : /^nan$/i.test(valueText) ? Number.NaN : Number(valueText);
    if (Number.isNaN(value) && !/^nan$/i.test(valueText)) throw new Error(`line ${number + 1}: value "${valueText}" is not a number`);
    const base = families.has(name)
      ? name
      : ([...families.keys()].find((f) => name === f || ['_bucket', '_sum', '_count'].some((suffix) => name === `${f}${suffix}`)) ?? name);
    family(base).samples.push({ name, labels: parseLabels(labelText ?? '', number + 1), value });
  }
  return families;
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const match = LABEL.exec(text);
    if (match === null) throw new Error(`line ${line}: cannot read the labels {${text}}`);
    const [, name, raw] = match as unknown as [string, string, string];
    labels[name] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/** The value of the one sample of `name` whose labels include `labels`; throws when there is none or several. */
export function sampleValue(families: ReadonlyMap<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const matching = [...families.values()]
    .flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matching.length !== 1) {
    throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${matching.length}`);
  }
  return (matching[0] as Sample).value;
}

/**
 * What is wrong with a histogram family: buckets in increasing `le` order
 * with non-decreasing counts, ending at +Inf, whose count equals _count.
 * Empty when nothing is.
 */
export function histogramProblems(family: Family): string[] {
  const problems: string[] = [];
  if (family.type !== 'histogram') return [`${family.name} is a ${family.type}, not a histogram`];
  const series = new Map<string, Sample[]>();
  for (const sample of family.samples) {
    const { le: _, ...rest } = sample.labels;
    const key = JSON.stringify(rest);
    series.set(key, [...(series.get(key) ?? []), sample]);
  }
  for (const [key, samples] of series) {
    const buckets = samples.filter((s) => s.name === `${family.name}_bucket`);
    const count = samples.find((s) => s.name === `${family.name}_count`);
    if (samples.find((s) => s.name === `${family.name}_sum`) === undefined) problems.push(`${family.name}${key} has no _sum`);
    if (buckets.length < 2) problems.push(`${family.name}${key} has ${buckets.length} buckets`);
    let previous = { le: -Infinity, count: 0 };
    for (const bucket of buckets) {
      const le = bucket.labels.le === '+Inf' ? Infinity : Number(bucket.labels.le);
      if (!(le > previous.le)) problems.push(`${family.name}${key}: bucket le=${bucket.labels.le} after le=${previous.le}`);
      if (bucket.value < previous.count) problems.push(`${family.name}${key}: bucket le=${bucket.labels.le} counts fewer than the one before`);
      previous = { le, count: bucket.value };
    }
    if (previous.le !== Infinity) problems.push(`${family.name}${key}: the last bucket is not le="+Inf"`);
    if (count === undefined || count.value !== previous.count)
      problems.push(`${family.name}${key}: _count ${count?.value} differs from the +Inf bucket ${previous.count}`);
  }
  return problems;
}

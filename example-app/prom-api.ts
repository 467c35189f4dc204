/** The two Prometheus HTTP API calls the example needs, typed just enough to read their answers. */

export interface InstantSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RangeSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

type QueryResult =
  | { resultType: 'vector'; result: InstantSample[] }
  | { resultType: 'matrix'; result: RangeSeries[] }
  | { resultType: 'scalar' | 'string'; result: [number, string] };

interface ApiAnswer {
  status: 'success' | 'error';
  data?: QueryResult;
  errorType?: string;
  error?: string;
}

async function call(prometheusUrl: string, path: string, params: Record<string, string>): Promise<QueryResult> {
  const response = await fetch(`${prometheusUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
  const answer = (await response.json()) as ApiAnswer;
  if (answer.status !== 'success' || answer.data === undefined) {
    throw new Error(`Prometheus rejected ${JSON.stringify(params.query)}: ${answer.errorType}: ${answer.error}`);
  }
  return answer.data;
}

/** Evaluates `query` at `time` (seconds; now by default). */
export function instantQuery(prometheusUrl: string, query: string, time?: number): Promise<QueryResult> {
  const params: Record<string, string> = { query };
  if (time !== undefined) params.time = String(time);
  return call(prometheusUrl, '/api/v1/query', params);
}

export async function rangeQuery(
  prometheusUrl: string,
  query: string,
  range: { start: number; end: number; stepSeconds: number },
): Promise<RangeSeries[]> {
  const data = await call(prometheusUrl, '/api/v1/query_range', {
    query,
    start: String(range.start),
    end: String(range.end),
    step: String(range.stepSeconds),
  });
  if (data.resultType !== 'matrix') throw new Error(`expected a matrix from ${query}, got ${data.resultType}`);
  return data.result;
}

/** Where a test holds a mock model's stream: before part `at`, until `wait` resolves. */
export interface StreamGate {
  at: number;
  wait: Promise<void>;
}

/**
 * What a provider streams into a mock AI SDK model (`MockLanguageModelV1`, `MockLanguageModelV3`): its parts in
 * order, held before part `gate.at` until the test releases it, so a test can read the metrics mid-answer.
 */
export function modelStream<T>(parts: readonly T[], gate?: StreamGate): ReadableStream<T> {
  let i = 0;
  return new ReadableStream<T>({
    async pull(controller) {
      if (gate !== undefined && i === gate.at) await gate.wait;
      if (i < parts.length) controller.enqueue(parts[i++] as T);
      else controller.close();
    },
  });
}

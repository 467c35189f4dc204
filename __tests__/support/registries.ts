import { Registry } from 'prom-client';
import type { RegistryContentType } from 'prom-client';

/** A registry serving `contentType` (prom-client's types bind the content type to a type parameter). */
export function registryOf(contentType: RegistryContentType): Registry {
  const registry = new Registry<RegistryContentType>();
  registry.setContentType(contentType);
  return registry as unknown as Registry;
}

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';

interface Probe {
  httpGet: { path: string };
  timeoutSeconds?: number;
  periodSeconds?: number;
  failureThreshold?: number;
}

/** The pod spec docs/operations.md gives under "Deploys behind a load balancer or Kubernetes". */
function documentedPodSpec(): { containers: { readinessProbe: Probe }[] } {
  const guide = readFileSync(path.join(PROJECT_ROOT, 'docs/operations.md'), 'utf8');
  const block = /```yaml\n(# Kubernetes: the pod's spec[\s\S]*?)```/.exec(guide)?.[1];
  if (!block) throw new Error('no Kubernetes pod spec in docs/operations.md');
  return parse(block);
}

// The kubelet gives a probe timeoutSeconds, 1 s unless set.
const KUBELET_DEFAULT_TIMEOUT_SEC = 1;

describe("the guide's Kubernetes pod spec", () => {
  it('gives the readiness probe longer than /readyz may take to answer with the default READY_TIMEOUT_MS', () => {
    // /readyz waits up to READY_TIMEOUT_MS (1000 ms) for its query, then answers: with the kubelet's
    // default 1 s a database answering in nearly 1 s failed the probe, and with failureThreshold 1 each such
    // answer took the pod out of its Service, though the app called itself ready.
    const probe = documentedPodSpec().containers[0]?.readinessProbe;
    expect(probe?.httpGet.path).toBe('/readyz');
    const timeoutMs = (probe?.timeoutSeconds ?? KUBELET_DEFAULT_TIMEOUT_SEC) * 1000;
    expect(timeoutMs).toBeGreaterThan(loadConfig({}).readyTimeoutMs);
  });
});

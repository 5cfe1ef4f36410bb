/**
 * Deterministic state initialisation from a seed. Parameters use PyTorch's default ranges
 * (uniform ±1/√fan_in for conv and linear weights and biases, BN γ=1 β=0, running mean 0 var 1) unless a layer
 * asks for another (`init: kaimingNormal('fan_out')`: normal with the given std);
 * the random stream is lpc's counter-based generator, so CPU and WebGPU runs start from identical weights.
 */
import { Module } from '../../ir/graph.js';
import { numel } from '../../ir/types.js';
import { randomBitsArray } from '../../ir/quant/rng.js';
import { attrsOf } from '../../ir/op-registry.js';

/** The `step` lane of the generator reserved for initialisation (training steps count from 0 upwards). */
const INIT_STEP = 0xffffffff;

export interface StateDecl { name: string; kind: string; shape: number[]; init: string; bound?: number; std?: number }

export function stateDecls(m: Module): StateDecl[] {
  const seen = new Map<string, StateDecl>();
  for (const g of m.graphs)
    for (const n of g.nodes)
      if (n.op === 'state' && !seen.has(attrsOf(n, 'state').name)) {
        const { name, kind, shape, init, bound, std } = attrsOf(n, 'state');
        seen.set(name, { name, kind, shape, init, bound, std });
      }
  return [...seen.values()];
}

export function initState(m: Module, seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  stateDecls(m).forEach((d, idx) => {
    const n = numel(d.shape);
    const v = new Float32Array(n);
    switch (d.init) {
      case 'zeros': break;
      case 'ones': v.fill(1); break;
      case 'bn_running': v.fill(1, n / 2); break; // [mean; var] = [0…; 1…]
      case 'uniform': {
        const bits = randomBitsArray(seed >>> 0, INIT_STEP, idx, n), b = d.bound ?? 0;
        for (let i = 0; i < n; i++) v[i] = (((bits[i] >>> 8) + 0.5) / 16777216 * 2 - 1) * b;
        break;
      }
      case 'normal': {
        // Box–Muller on two uniforms in (0, 1) per element, from the same counter-based stream
        const bits = randomBitsArray(seed >>> 0, INIT_STEP, idx, 2 * n), s = d.std ?? 0;
        const u = (k: number) => ((bits[k] >>> 8) + 0.5) / 16777216;
        for (let i = 0; i < n; i++) v[i] = Math.sqrt(-2 * Math.log(u(2 * i))) * Math.cos(2 * Math.PI * u(2 * i + 1)) * s;
        break;
      }
      default: {
        // `copy:<state>`: starts equal to another state (OptimLP's accumulator is a copy of the initial weights).
        const src = d.init.startsWith('copy:') ? out.get(d.init.slice(5)) : undefined;
        if (!src || src.length !== n) throw new Error(`state '${d.name}': unknown init '${d.init}'`);
        v.set(src);
      }
    }
    out.set(d.name, v);
  });
  return out;
}

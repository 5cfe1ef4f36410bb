/**
 * bench/zoo-mem.ts --concat (built: dist/bench/zoo-mem.js): DenseNet-121's concatenation bytes from the memory plan
 * against the architecture's own count (kuangliu's CIFAR DenseNet-121: blocks [6, 12, 24, 16], growth 32, a 64-channel
 * stem, transitions halving channels and map sizes), not against a previous run: with every concat copying, and
 * with the concat views (passes/channel-views.ts), where no concat or gradient slice stores a byte and the saved
 * activations lose every concat output and block input but keep one buffer per block.
 */
import { execFileSync } from 'node:child_process';

/** Elements of the concat outputs, of each block's final concat and of each block's input, for 32×32 inputs. */
function denseNet121Concats(): { elements: number; finals: number; blockInputs: number } {
  let c = 64, hw = 32 * 32, elements = 0, finals = 0, blockInputs = 0;
  [6, 12, 24, 16].forEach((layers, b) => {
    blockInputs += c * hw;
    for (let i = 0; i < layers; i++) { c += 32; elements += c * hw; }
    finals += c * hw;
    if (b < 3) { c = Math.floor(c / 2); hw /= 4; }
  });
  return { elements, finals, blockInputs };
}

test('zoo-mem --concat: DenseNet-121 concat bytes, saved bytes and one-buffer-per-block bytes match the architecture', () => {
  const batch = 2;
  const out = JSON.parse(execFileSync(process.execPath, ['dist/bench/zoo-mem.js', '--concat', '--batch', String(batch)], { encoding: 'utf8' }));
  const { elements, finals, blockInputs } = denseNet121Concats();
  const bytes = (n: number) => n * batch * 4;
  expect(out.concats).toBe(6 + 12 + 24 + 16);
  expect(out.dense_blocks).toBe(4);
  expect(out.concat_output_bytes).toBe(bytes(elements));
  expect(out.slice_output_bytes_backward).toBe(bytes(elements)); // the gradient splits every concat's error
  expect(out.one_buffer_per_block_bytes).toBe(bytes(finals));
  expect(out.block_input_bytes).toBe(bytes(blockInputs));
  // copying: every concat output written and saved (each is a BN input), the slices write them again
  expect(out.copies.concat_bytes_written).toBe(bytes(elements));
  expect(out.copies.slice_bytes_written).toBe(bytes(elements));
  expect(out.copies.concat_saved_bytes).toBe(bytes(elements));
  expect(out.copies.concat_bytes_live_at_peak).toBeLessThanOrEqual(out.copies.live_peak_bytes);
  // views: both inputs of every concat in place, every slice read in place, nothing copied
  expect(out.views.placed_values).toBe(2 * out.concats);
  expect(out.views.slices_read_in_place).toBe(2 * out.concats);
  // the features-so-far part of each concat's error is added to in place by the BN input gradient that reads it
  expect(out.views.errors_summed_in_place).toBe(out.concats);
  expect(out.views.concat_bytes_written).toBe(0);
  expect(out.views.slice_bytes_written).toBe(0);
  expect(out.views.concat_saved_bytes).toBe(bytes(finals)); // the four block buffers
  expect(out.views.saved_activations_bytes).toBe(out.copies.saved_activations_bytes - bytes(elements) - bytes(blockInputs) + bytes(finals));
  expect(out.views.live_peak_bytes).toBeLessThan(out.copies.live_peak_bytes);
  expect(out.views.allocated_bytes).toBeLessThan(out.copies.allocated_bytes);
});

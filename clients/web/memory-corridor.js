// MemoryCorridor in the browser: rise_runtime/envs/memory_task.py's task, drawn pixel for pixel as
// Python draws it (frame_size x frame_size gray), with the settings the model's `rise.env` carries.
// The random stream is the page's own (mulberry32), not numpy's: episodes differ from Python's,
// their distribution does not.
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.MemoryCorridor = factory();
}(typeof self !== 'undefined' ? self : this, function () {
'use strict';

const CUE_BRIGHTNESS = 255;

function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class MemoryCorridor {
  // settings: { corridor_length, num_cues, cue_steps, distractor_prob } (a model's rise.env)
  constructor(settings, frameSize, seed = 0) {
    this.corridorLength = settings.corridor_length;
    this.numCues = settings.num_cues;
    this.cueSteps = settings.cue_steps;
    this.distractorProb = settings.distractor_prob;
    this.size = frameSize;
    this.episodeSteps = this.cueSteps + this.corridorLength + 1;
    this.random = mulberry32(seed);
    this.cue = 0;
    this.distractor = -1;
    this.t = 0;
  }

  px(at84) { // positions are laid out on an 84-pixel frame and scaled, as in Python
    return Math.max(1, Math.floor(at84 * this.size / 84));
  }

  fill(frame, rowStart, rowEnd, colStart, colEnd, value) {
    for (let r = Math.max(0, rowStart); r < Math.min(this.size, rowEnd); r++) {
      frame.fill(value, r * this.size + Math.max(0, colStart), r * this.size + Math.min(this.size, colEnd));
    }
  }

  frame() {
    const size = this.size;
    const frame = new Uint8Array(size * size);
    const wall = this.px(2);
    this.fill(frame, 0, size, 0, wall, 96);
    this.fill(frame, 0, size, size - wall, size, 96);
    const band = Math.floor(size / this.numCues);
    const margin = this.px(8);
    if (this.t < this.cueSteps) {
      this.fill(frame, this.cue * band, (this.cue + 1) * band, margin, size - margin, CUE_BRIGHTNESS);
    } else if (this.t < this.cueSteps + this.corridorLength) {
      if (this.distractor >= 0) {
        this.fill(frame, this.distractor * band, (this.distractor + 1) * band, margin, size - margin, CUE_BRIGHTNESS);
      }
      const row = this.px(10) + Math.floor((this.t - this.cueSteps) * this.px(60) / Math.max(this.corridorLength, 1));
      this.fill(frame, row, row + this.px(4), this.px(30), this.px(54), 160);
    } else {
      for (let r = 0; r < size; r += this.px(6)) frame.fill(200, r * size, (r + 1) * size);
    }
    return frame;
  }

  reset() {
    this.cue = Math.floor(this.random() * this.numCues);
    this.t = 0;
    this.distractor = -1;
    return this.frame();
  }

  // -> { frame, reward, done, success }
  step(action) {
    const deciding = this.t === this.episodeSteps - 1;
    const success = deciding && action === this.cue;
    const reward = deciding ? (success ? 1 : -1) : 0;
    this.t += 1;
    this.distractor = -1;
    if (this.distractorProb > 0 && this.cueSteps <= this.t && this.t < this.cueSteps + this.corridorLength) {
      if (this.random() < this.distractorProb) this.distractor = Math.floor(this.random() * this.numCues);
    }
    return { frame: this.frame(), reward, done: deciding, success };
  }
}

return MemoryCorridor;
}));

// The RISE step-model contract in JavaScript, written from docs/model-contract.md alone: the
// metadata, the recurrent state, and the frame preprocessing bit for bit. No I/O and no runtime of
// its own: hand it an onnxruntime (onnxruntime-node in Node, onnxruntime-web in a browser).
//
//   Node:     const { RisePolicy } = require('./rise');            (rise.js wraps this file)
//   Browser:  <script src="ort.min.js"></script><script src="rise-core.js"></script>
//             const policy = await RiseCore.RisePolicy.fromBytes(ort, bytes);
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.RiseCore = factory();
}(typeof self !== 'undefined' ? self : this, function () {
'use strict';

const FORMAT_VERSION = '1';
const REQUIRED_METADATA = ['rise.format_version', 'rise.game', 'rise.action_meanings', 'rise.window_length',
  'rise.embedding_size', 'rise.memory', 'rise.preprocessing', 'rise.state'];
const UTF8 = new TextDecoder('utf-8');

// ---- ONNX metadata_props, read from the protobuf (onnxruntime-node has no call for custom metadata)

function readVarint(bytes, position) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[position++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, position];
    shift += 7;
  }
}

// Calls visit(field, wireType, bytes, start, end) for each field of one protobuf message.
function forEachField(bytes, start, end, visit) {
  let position = start;
  while (position < end) {
    let key;
    [key, position] = readVarint(bytes, position);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (wireType === 0) {
      [, position] = readVarint(bytes, position);
    } else if (wireType === 1) {
      position += 8;
    } else if (wireType === 5) {
      position += 4;
    } else if (wireType === 2) {
      let length;
      [length, position] = readVarint(bytes, position);
      visit(field, bytes, position, position + length);
      position += length;
    } else {
      throw new Error(`unsupported protobuf wire type ${wireType}: not an ONNX model`);
    }
  }
}

function readMetadata(bytes) {
  const metadata = {};
  const MODEL_METADATA_PROPS = 14; // ModelProto.metadata_props: repeated StringStringEntryProto
  forEachField(bytes, 0, bytes.length, (field, data, start, end) => {
    if (field !== MODEL_METADATA_PROPS) return;
    let key = '';
    let value = '';
    forEachField(data, start, end, (entryField, entryData, entryStart, entryEnd) => {
      const text = UTF8.decode(entryData.subarray(entryStart, entryEnd));
      if (entryField === 1) key = text;
      if (entryField === 2) value = text;
    });
    metadata[key] = value;
  });
  return metadata;
}

// ---- Preprocessing (docs/model-contract.md, "Preprocessing")

function roundHalfEven(x) {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

// screen: Uint8Array of H*W*channels (channels 3 = RGB, 1 = gray); returns Uint8Array H*W luma.
function toGray(screen, height, width, channels) {
  const gray = new Uint8Array(height * width);
  if (channels === 1) {
    gray.set(screen.subarray(0, height * width));
    return gray;
  }
  for (let i = 0; i < height * width; i++) {
    const r = screen[3 * i];
    const g = screen[3 * i + 1];
    const b = screen[3 * i + 2];
    gray[i] = (9798 * r + 19235 * g + 3735 * b + 16384) >> 15;
  }
  return gray;
}

// One axis of area resampling: for each output index, [[sourceIndex, float32 weight], ...] in order.
function areaTable(source, target) {
  const scale = 1.0 / (target / source);
  const table = [];
  for (let out = 0; out < target; out++) {
    const start = out * scale;
    const end = start + scale;
    const width = Math.min(scale, source - start);
    const last = Math.min(Math.floor(end), source - 1);
    const first = Math.min(Math.ceil(start), last);
    const cells = [];
    if (first - start > 1e-3) cells.push([first - 1, Math.fround((first - start) / width)]);
    for (let i = first; i < last; i++) cells.push([i, Math.fround(1.0 / width)]);
    if (end - last > 1e-3) cells.push([last, Math.fround(Math.min(end - last, 1.0, width) / width)]);
    table.push(cells);
  }
  return table;
}

// One axis of the fixed-point bilinear resize: per output index [left, right, w0, w1, atEdge].
function bilinearTable(source, target, areaMode) {
  const scale = source / target;
  const inverse = target / source;
  const table = [];
  for (let d = 0; d < target; d++) {
    let left;
    let f;
    if (areaMode) {
      left = Math.floor(d * scale);
      f = Math.fround((d + 1) - (left + 1) * inverse);
      f = f <= 0 ? 0 : Math.fround(f - Math.floor(f));
    } else {
      f = Math.fround((d + 0.5) * scale - 0.5);
      left = Math.floor(f);
      f = Math.fround(f - left);
    }
    if (left < 0) { left = 0; f = 0; }
    let edge = false;
    if (left + 1 >= source) {
      edge = true;
      if (left >= source - 1) { left = source - 1; f = 0; }
    }
    table.push([left, Math.min(left + 1, source - 1), roundHalfEven(Math.fround(1 - f) * 2048),
      roundHalfEven(f * 2048), edge]);
  }
  return table;
}

function bilinear(gray, height, width, size, areaMode) {
  const columns = bilinearTable(width, size, areaMode);
  const rows = bilinearTable(height, size, areaMode);
  const across = new Int32Array(height * size);
  for (let y = 0; y < height; y++) {
    for (let c = 0; c < size; c++) {
      const [left, right, w0, w1, edge] = columns[c];
      across[y * size + c] = edge ? gray[y * width + left] * 2048
        : gray[y * width + left] * w0 + gray[y * width + right] * w1;
    }
  }
  const out = new Uint8Array(size * size);
  for (let r = 0; r < size; r++) {
    const [top, bottom, v0, v1] = rows[r];
    for (let c = 0; c < size; c++) {
      const value = (((across[top * size + c] >> 4) * v0) >> 16) + (((across[bottom * size + c] >> 4) * v1) >> 16);
      out[r * size + c] = clampByte((value + 2) >> 2);
    }
  }
  return out;
}

function clampByte(x) {
  return Math.min(255, Math.max(0, x));
}

function resize(gray, height, width, size, interpolation) {
  const out = new Uint8Array(size * size);
  if (height === size && width === size) {
    out.set(gray);
    return out;
  }
  if (interpolation === 'nearest') {
    for (let r = 0; r < size; r++) {
      const row = Math.min(Math.floor(r * (1.0 / (size / height))), height - 1);
      for (let c = 0; c < size; c++) {
        out[r * size + c] = gray[row * width + Math.min(Math.floor(c * (1.0 / (size / width))), width - 1)];
      }
    }
    return out;
  }
  if (interpolation === 'linear') return bilinear(gray, height, width, size, false);
  if (interpolation !== 'area') throw new Error(`unknown interpolation ${interpolation}; see docs/model-contract.md`);
  if (height < size || width < size) return bilinear(gray, height, width, size, true);
  const ky = height / size;
  const kx = width / size;
  if (Number.isInteger(ky) && Number.isInteger(kx)) { // whole blocks: integer sums
    const scale = Math.fround(1.0 / (ky * kx));
    for (let r = 0; r < size; r++) {
      for (let c = 0; c < size; c++) {
        let sum = 0;
        for (let y = r * ky; y < (r + 1) * ky; y++) {
          for (let x = c * kx; x < (c + 1) * kx; x++) sum += gray[y * width + x];
        }
        out[r * size + c] = ky === 2 && kx === 2 ? (sum + 2) >> 2
          : clampByte(roundHalfEven(Math.fround(Math.fround(sum) * scale)));
      }
    }
    return out;
  }
  // float32 arithmetic in the contract's order: along rows first, then down columns.
  const rowsTable = areaTable(height, size);
  const colsTable = areaTable(width, size);
  const across = new Float32Array(height * size);
  for (let y = 0; y < height; y++) {
    for (let d = 0; d < size; d++) {
      let total = 0;
      for (const [x, w] of colsTable[d]) total = Math.fround(total + Math.fround(gray[y * width + x] * w));
      across[y * size + d] = total;
    }
  }
  for (let d = 0; d < size; d++) {
    for (let c = 0; c < size; c++) {
      let total = 0;
      for (const [y, w] of rowsTable[d]) total = Math.fround(total + Math.fround(across[y * size + c] * w));
      out[d * size + c] = clampByte(roundHalfEven(total));
    }
  }
  return out;
}

// last, previous: Uint8Array H*W*channels (previous may be null); returns the S*S frame.
// Screen layouts engines hand over (docs/model-contract.md, "Screen layouts"): channel count and the
// positions of R, G, B. Only rows are reordered and channels picked, so every layout gives the RGB
// path's frame bit for bit.
const LAYOUTS = { rgb: [3, [0, 1, 2]], bgr: [3, [2, 1, 0]], rgba: [4, [0, 1, 2]], bgra: [4, [2, 1, 0]], gray: [1, null] };

// screen: Uint8Array H*W*c in `layout` (bottomUp: the last row first) -> { data, channels } as RGB
// (channels 3) or gray (channels 1), top row first.
function standardScreen(screen, height, width, layout = 'rgb', bottomUp = false) {
  if (!(layout in LAYOUTS)) throw new Error(`unknown screen layout ${layout}; choose one of ${Object.keys(LAYOUTS)}`);
  const [channels, order] = LAYOUTS[layout];
  if (screen.length !== height * width * channels) {
    throw new Error(`a ${layout} screen of ${height}x${width} has ${height * width * channels} bytes, got ${screen.length}`);
  }
  if (layout === 'rgb' && !bottomUp) return { data: screen, channels: 3 };
  if (layout === 'gray' && !bottomUp) return { data: screen, channels: 1 };
  const outChannels = channels === 1 ? 1 : 3;
  const out = new Uint8Array(height * width * outChannels);
  for (let r = 0; r < height; r++) {
    const source = bottomUp ? height - 1 - r : r;
    for (let c = 0; c < width; c++) {
      const from = (source * width + c) * channels;
      const to = (r * width + c) * outChannels;
      if (outChannels === 1) out[to] = screen[from];
      else for (let k = 0; k < 3; k++) out[to + k] = screen[from + order[k]];
    }
  }
  return { data: out, channels: outChannels };
}

function preprocess(last, previous, height, width, channels, config) {
  let screen = last;
  if (config.max_pool_last_two && previous) {
    screen = new Uint8Array(last.length);
    for (let i = 0; i < last.length; i++) screen[i] = Math.max(last[i], previous[i]);
  }
  return resize(toGray(screen, height, width, channels), height, width, config.frame_size, config.interpolation);
}

// ---- The policy: a batch of games (1 by default), each with its recurrent state kept between calls

const TYPED = { uint8: Uint8Array, float32: Float32Array, float16: Uint16Array, int32: Int32Array, bool: Uint8Array };

class RisePolicy {
  constructor(ort, session, metadata, name) {
    this.ort = ort;
    this.session = session;
    this.name = name;
    this.metadata = metadata;
    this.game = metadata['rise.game'];
    this.actionMeanings = JSON.parse(metadata['rise.action_meanings']);
    this.preprocessing = JSON.parse(metadata['rise.preprocessing']);
    this.stateLayout = JSON.parse(metadata['rise.state']);
    this.env = metadata['rise.env'] ? JSON.parse(metadata['rise.env']) : null;
    this.qValues = null;
    this.reset(1);
  }

  // bytes: Uint8Array of the .onnx file; options.threads: intra-op threads (Node); options.session:
  // extra InferenceSession options (onnxruntime-web: executionProviders).
  static async fromBytes(ort, bytes, options = {}, name = 'the model') {
    const metadata = readMetadata(bytes);
    const missing = REQUIRED_METADATA.filter((key) => !(key in metadata));
    if (missing.length) throw new Error(`${name} is not a RISE step model (metadata ${missing} missing)`);
    if (metadata['rise.format_version'] !== FORMAT_VERSION) {
      throw new Error(`${name} has step-model format ${metadata['rise.format_version']}; this client reads ${FORMAT_VERSION}`);
    }
    const sessionOptions = Object.assign(options.threads ? { intraOpNumThreads: options.threads } : {},
      options.session || {});
    const session = await ort.InferenceSession.create(bytes, sessionOptions);
    return new RisePolicy(ort, session, metadata, name);
  }

  // A fresh memory for `batchSize` games (every game's episode starts at its next step).
  reset(batchSize = this.batchSize || 1) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`the batch size must be >= 1, got ${batchSize}`);
    this.batchSize = batchSize;
    this.state = {};
    for (const entry of this.stateLayout) {
      const size = entry.shape.reduce((a, b) => a * b, 1);
      this.state[entry.name] = new this.ort.Tensor(entry.dtype, new TYPED[entry.dtype](batchSize * size),
        [batchSize, ...entry.shape]);
    }
    this.first = new Array(batchSize).fill(true);
  }

  // frames: Uint8Array B*S*S (preprocessed, one frame per game); newEpisode: optional booleans [B]
  // (the games whose episode starts at this step). Returns the greedy actions [B]; qValues is [B][A].
  async stepFrames(frames, newEpisode = null) {
    const size = this.preprocessing.frame_size;
    const batch = this.batchSize;
    if (frames.length !== batch * size * size) {
      throw new Error(`expected ${batch} frame(s) of ${size}x${size} (${batch * size * size} bytes), got ${frames.length}`);
    }
    const reset = Uint8Array.from(this.first, (first, i) => (first || (newEpisode && newEpisode[i]) ? 1 : 0));
    const feeds = {
      frame: new this.ort.Tensor('uint8', frames, [batch, size, size]),
      reset: new this.ort.Tensor('bool', reset, [batch]),
    };
    for (const entry of this.stateLayout) feeds[`state_in_${entry.name}`] = this.state[entry.name];
    const outputs = await this.session.run(feeds);
    for (const entry of this.stateLayout) this.state[entry.name] = outputs[`state_out_${entry.name}`];
    this.first.fill(false);
    const q = outputs.q_values.data;
    const actions = this.actionMeanings.length;
    this.qValues = Array.from({ length: batch }, (_, i) => Array.from(q.subarray(i * actions, (i + 1) * actions)));
    return Array.from(outputs.action.data, Number);
  }

  // frame: Uint8Array S*S of one game (batch 1); returns its greedy action.
  async stepFrame(frame) {
    if (this.batchSize !== 1) this.reset(1);
    const [action] = await this.stepFrames(frame);
    this.qValues = this.qValues[0];
    return action;
  }

  // Raw screens (Uint8Array H*W*c in `layout`: rgb, bgr, rgba, bgra or gray; bottomUp for OpenGL
  // read-backs) -> greedy action.
  async act(screen, previousScreen, height, width, layout = 'rgb', bottomUp = false) {
    const last = standardScreen(screen, height, width, layout, bottomUp);
    const previous = previousScreen ? standardScreen(previousScreen, height, width, layout, bottomUp).data : null;
    return this.stepFrame(preprocess(last.data, previous, height, width, last.channels, this.preprocessing));
  }

  // Many games at once: screens[i] (and previousScreens[i] or null) of game i, all H x W in `layout`;
  // newEpisode[i] marks a game whose episode starts now. The batch size follows screens.length (a
  // change of size starts every game afresh). Returns the greedy actions [B].
  async actBatch(screens, previousScreens, height, width, layout = 'rgb', bottomUp = false, newEpisode = null) {
    if (screens.length !== this.batchSize) this.reset(screens.length);
    const size = this.preprocessing.frame_size;
    const frames = new Uint8Array(screens.length * size * size);
    screens.forEach((screen, i) => {
      const last = standardScreen(screen, height, width, layout, bottomUp);
      const before = previousScreens && previousScreens[i]
        ? standardScreen(previousScreens[i], height, width, layout, bottomUp).data : null;
      frames.set(preprocess(last.data, before, height, width, last.channels, this.preprocessing), i * size * size);
    });
    return this.stepFrames(frames, newEpisode);
  }
}

return { FORMAT_VERSION, REQUIRED_METADATA, RisePolicy, LAYOUTS, preprocess, readMetadata, resize, roundHalfEven,
  standardScreen, toGray };
}));

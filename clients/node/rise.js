// A RISE step model from JavaScript (onnxruntime-node), written from docs/model-contract.md alone:
// the metadata, the recurrent state, and the frame preprocessing bit for bit.
//
//   const { RisePolicy } = require('./rise');
//   const policy = await RisePolicy.load('pong.onnx');
//   const action = await policy.act(screen, previousScreen, height, width);  // raw RGB Uint8Arrays
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');

const FORMAT_VERSION = '1';
const REQUIRED_METADATA = ['rise.format_version', 'rise.game', 'rise.action_meanings', 'rise.window_length',
  'rise.embedding_size', 'rise.memory', 'rise.preprocessing', 'rise.state'];

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
      const text = Buffer.from(entryData.subarray(entryStart, entryEnd)).toString('utf8');
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
  if (interpolation !== 'area' || height < size || width < size) {
    throw new Error(`this client resizes only by shrinking with "area" or by "nearest" ` +
      `(got ${interpolation}, ${height}x${width} -> ${size}x${size}); see docs/model-contract.md`);
  }
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

// ---- The policy: one game, its recurrent state kept between calls

const TYPED = { uint8: Uint8Array, float32: Float32Array, float16: Uint16Array, int32: Int32Array, bool: Uint8Array };

class RisePolicy {
  constructor(session, metadata, path) {
    this.session = session;
    this.path = path;
    this.metadata = metadata;
    this.game = metadata['rise.game'];
    this.actionMeanings = JSON.parse(metadata['rise.action_meanings']);
    this.preprocessing = JSON.parse(metadata['rise.preprocessing']);
    this.stateLayout = JSON.parse(metadata['rise.state']);
    this.qValues = null;
    this.reset();
  }

  static async load(path, options = {}) {
    if (!fs.existsSync(path)) throw new Error(`no model at ${path}; create one with rise-export RUN_DIR --out ${path}`);
    const bytes = new Uint8Array(fs.readFileSync(path));
    const metadata = readMetadata(bytes);
    const missing = REQUIRED_METADATA.filter((key) => !(key in metadata));
    if (missing.length) throw new Error(`${path} is not a RISE step model (metadata ${missing} missing)`);
    if (metadata['rise.format_version'] !== FORMAT_VERSION) {
      throw new Error(`${path} has step-model format ${metadata['rise.format_version']}; this client reads ${FORMAT_VERSION}`);
    }
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: options.threads || 1 });
    return new RisePolicy(session, metadata, path);
  }

  reset() {
    this.state = {};
    for (const entry of this.stateLayout) {
      const size = entry.shape.reduce((a, b) => a * b, 1);
      this.state[entry.name] = new ort.Tensor(entry.dtype, new TYPED[entry.dtype](size), [1, ...entry.shape]);
    }
    this.first = true;
  }

  // frame: Uint8Array S*S (already preprocessed); returns the greedy action.
  async stepFrame(frame) {
    const size = this.preprocessing.frame_size;
    const feeds = {
      frame: new ort.Tensor('uint8', frame, [1, size, size]),
      reset: new ort.Tensor('bool', Uint8Array.from([this.first ? 1 : 0]), [1]),
    };
    for (const entry of this.stateLayout) feeds[`state_in_${entry.name}`] = this.state[entry.name];
    const outputs = await this.session.run(feeds);
    for (const entry of this.stateLayout) this.state[entry.name] = outputs[`state_out_${entry.name}`];
    this.first = false;
    this.qValues = Array.from(outputs.q_values.data);
    return Number(outputs.action.data[0]);
  }

  // Raw screens (Uint8Array H*W*c in `layout`: rgb, bgr, rgba, bgra or gray; bottomUp for OpenGL
  // read-backs) -> greedy action.
  async act(screen, previousScreen, height, width, layout = 'rgb', bottomUp = false) {
    const last = standardScreen(screen, height, width, layout, bottomUp);
    const previous = previousScreen ? standardScreen(previousScreen, height, width, layout, bottomUp).data : null;
    return this.stepFrame(preprocess(last.data, previous, height, width, last.channels, this.preprocessing));
  }
}

module.exports = { RisePolicy, LAYOUTS, preprocess, readMetadata, roundHalfEven, standardScreen };

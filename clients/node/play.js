#!/usr/bin/env node
// node play.js MODEL.onnx [--screens SCREENS.npy [--layout L] [--bottom-up] [--episode-starts STARTS.npy]
//                          [--batch]] [--json]
//
// Loads an exported RISE step model, prints what its metadata says, and steps it:
// - over the raw screens of SCREENS.npy (uint8, [T, H, W, C], or [T, 2, H, W, C] with each step's
//   last and previous screen; gray screens may be [T, H, W]), one agent step per entry, in --layout
//   (rgb, bgr, rgba, bgra, gray: C = 3, 3, 4, 4, 1) and, with --bottom-up, the last row first;
//   STARTS.npy (bool or uint8 [T]) marks the steps that start a new episode (memory wiped);
//   with --batch, SCREENS.npy is [T, B, H, W, C]: B games stepped together in one model call
//   (STARTS.npy then [T, B]), each with its own memory;
// - or, without --screens, over 200 random screens, reporting the step latency.
// With --json, it prints one JSON line per step: {"step", "action", "q_values", "frame" (base64)};
// with --batch, "actions" [B] and "q_values" [B][A] instead.
'use strict';

const fs = require('fs');
const { RisePolicy, LAYOUTS, preprocess, standardScreen } = require('./rise');

function readNpy(path) {
  const bytes = fs.readFileSync(path);
  if (bytes.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path} is not a .npy file`);
  const major = bytes[6];
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = bytes.toString('latin1', headerStart, headerStart + headerLength);
  if (!/'descr': '(\|u1|\|b1)'/.test(header)) throw new Error(`${path} must hold uint8 (or bool) values, header: ${header.trim()}`);
  if (/'fortran_order': True/.test(header)) throw new Error(`${path} must be in C order`);
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  return { shape, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerStart + headerLength) };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main(argv) {
  const args = { model: null, screens: null, json: false, layout: 'rgb', bottomUp: false, starts: null, batch: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--screens') args.screens = argv[++i];
    else if (argv[i] === '--json') args.json = true;
    else if (argv[i] === '--layout') args.layout = argv[++i];
    else if (argv[i] === '--bottom-up') args.bottomUp = true;
    else if (argv[i] === '--episode-starts') args.starts = argv[++i];
    else if (argv[i] === '--batch') args.batch = true;
    else if (argv[i] === '--help' || argv[i] === '-h') {
      console.log('usage: node play.js MODEL.onnx [--screens SCREENS.npy [--layout rgb|bgr|rgba|bgra|gray] ' +
                  '[--bottom-up] [--episode-starts STARTS.npy] [--batch]] [--json]');
      return 0;
    } else args.model = argv[i];
  }
  if (!(args.layout in LAYOUTS)) {
    console.error(`play.js: error: unknown --layout ${args.layout}; choose one of ${Object.keys(LAYOUTS).join(', ')}`);
    return 2;
  }
  if (!args.model) {
    console.error('play.js: error: give an exported .onnx model (rise-export RUN_DIR --out MODEL.onnx)');
    return 2;
  }
  let policy;
  try {
    policy = await RisePolicy.load(args.model);
  } catch (error) {
    console.error(`play.js: error: ${error.message}`);
    return 2;
  }
  const log = args.json ? () => {} : console.log;
  log(`[play.js] ${policy.game}: ${policy.metadata['rise.algo']} with ${policy.metadata['rise.memory']} memory, ` +
      `${policy.actionMeanings.length} actions (${policy.actionMeanings.join(', ')}), ` +
      `state ${policy.stateLayout.map((e) => `${e.name}[${e.shape}]`).join(' ')}`);
  if (args.batch) return playBatch(policy, args);
  let steps;
  let starts = null;
  if (args.screens) {
    let { shape, data } = readNpy(args.screens);
    const channels = LAYOUTS[args.layout][0];
    if (channels === 1 && shape[shape.length - 1] !== 1) shape = [...shape, 1];  // gray [T, H, W] -> [T, H, W, 1]
    const paired = shape.length === 5;
    if (!((shape.length === 4 || paired) && shape[shape.length - 1] === channels && (!paired || shape[1] === 2))) {
      console.error(`play.js: error: ${args.screens} has shape [${shape}]; --layout ${args.layout} expects ` +
                    `[T, H, W, ${channels}] or [T, 2, H, W, ${channels}]`);
      return 2;
    }
    const [height, width] = shape.slice(-3, -1);
    const screenSize = height * width * channels;
    steps = [];
    for (let t = 0; t < shape[0]; t++) {
      const base = t * screenSize * (paired ? 2 : 1);
      steps.push([data.subarray(base, base + screenSize),
        paired ? data.subarray(base + screenSize, base + 2 * screenSize) : null, height, width]);
    }
    if (args.starts) {
      const read = readNpy(args.starts);
      if (read.shape.length !== 1 || read.shape[0] !== shape[0]) {
        console.error(`play.js: error: --episode-starts ${args.starts} has shape [${read.shape}]; expected [${shape[0]}]`);
        return 2;
      }
      starts = read.data;
    }
  } else {
    steps = Array.from({ length: 200 }, () => {
      const screen = new Uint8Array(210 * 160 * 3);
      for (let i = 0; i < screen.length; i++) screen[i] = Math.floor(Math.random() * 256);
      return [screen, null, 210, 160];
    });
  }
  const latencies = [];
  for (let t = 0; t < steps.length; t++) {
    const [last, previous, height, width] = steps[t];
    if (starts && starts[t]) policy.reset();  // a new episode: the memory is wiped before this step
    const started = process.hrtime.bigint();
    const screen = standardScreen(last, height, width, args.layout, args.bottomUp);
    const before = previous ? standardScreen(previous, height, width, args.layout, args.bottomUp).data : null;
    const frame = preprocess(screen.data, before, height, width, screen.channels, policy.preprocessing);
    const action = await policy.stepFrame(frame);
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (args.json) {
      console.log(JSON.stringify({ step: t + 1, action, q_values: policy.qValues,
        frame: Buffer.from(frame).toString('base64') }));
    }
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  log(`[play.js] ${steps.length} steps; per step (preprocessing + model): p50 ${percentile(sorted, 50).toFixed(2)} ms, ` +
      `p99 ${percentile(sorted, 99).toFixed(2)} ms`);
  return 0;
}

// --batch: [T, B, H, W, C] screens, B games per model call.
async function playBatch(policy, args) {
  if (!args.screens) {
    console.error('play.js: error: --batch needs --screens SCREENS.npy of shape [T, B, H, W, C]');
    return 2;
  }
  let { shape, data } = readNpy(args.screens);
  const channels = LAYOUTS[args.layout][0];
  if (channels === 1 && shape.length === 4) shape = [...shape, 1];  // gray [T, B, H, W]
  if (shape.length !== 5 || shape[4] !== channels) {
    console.error(`play.js: error: --batch wants [T, B, H, W, ${channels}] screens, ${args.screens} has [${shape}]`);
    return 2;
  }
  const [steps, games, height, width] = shape;
  let starts = null;
  if (args.starts) {
    const read = readNpy(args.starts);
    if (read.shape.length !== 2 || read.shape[0] !== steps || read.shape[1] !== games) {
      console.error(`play.js: error: --episode-starts ${args.starts} has shape [${read.shape}]; expected [${steps}, ${games}]`);
      return 2;
    }
    starts = read.data;
  }
  const screenSize = height * width * channels;
  for (let t = 0; t < steps; t++) {
    const screens = Array.from({ length: games }, (_, g) => data.subarray((t * games + g) * screenSize,
      (t * games + g + 1) * screenSize));
    const newEpisode = starts ? Array.from(starts.subarray(t * games, (t + 1) * games), Boolean) : null;
    const actions = await policy.actBatch(screens, null, height, width, args.layout, args.bottomUp, newEpisode);
    if (args.json) console.log(JSON.stringify({ step: t + 1, actions, q_values: policy.qValues }));
  }
  if (!args.json) console.log(`[play.js] ${steps} steps of ${games} games`);
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });

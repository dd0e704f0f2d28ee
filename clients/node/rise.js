// A RISE step model from Node.js (onnxruntime-node): the contract (rise-core.js, shared with the
// browser client) plus reading the model from disk.
//
//   const { RisePolicy } = require('./rise');
//   const policy = await RisePolicy.load('pong.onnx');
//   const action = await policy.act(screen, previousScreen, height, width);  // raw RGB Uint8Arrays
//   const actions = await policy.actBatch([screenA, screenB], null, height, width);  // many games
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');
const core = require('./rise-core');

// Node's loader: RisePolicy.load(path) reads the file and names it in errors.
core.RisePolicy.load = async function load(path, options = {}) {
  if (!fs.existsSync(path)) throw new Error(`no model at ${path}; create one with rise-export RUN_DIR --out ${path}`);
  return core.RisePolicy.fromBytes(ort, new Uint8Array(fs.readFileSync(path)), { threads: options.threads || 1 }, path);
};

module.exports = core;

// The page: load a RISE step model (?model=URL, default model.onnx beside the page, or a file the
// user picks), build the memory task its metadata names, and play it at frame rate on the canvas.
//
// Hooks for tests and tools (all return promises):
//   window.rise.ready                       -> { game, actions, env } once the model is loaded
//   window.rise.evaluate(episodes, seed)    -> { episodes, successes, success_rate }: greedy play
//                                              as fast as the model runs (the canvas is not drawn)
//   window.rise.qOnFrames(base64, resets)   -> [[q...], ...]: the model's Q on preprocessed frames
//                                              (S*S bytes each, concatenated), one game, resets[t]
//                                              true where an episode starts
//   window.rise.preprocessScreens(base64, height, width, channels) -> base64 frames (the contract)
'use strict';

(function () {
  const SCALE = 4;
  const params = new URLSearchParams(location.search);
  const canvas = document.getElementById('screen');
  const context = canvas.getContext('2d');
  const errorBox = document.getElementById('error');
  let policy = null;
  let env = null;
  let paused = false;
  let loop = null;
  const stats = { episodes: 0, successes: 0, steps: 0, since: performance.now() };

  ort.env.wasm.wasmPaths = new URL('node_modules/onnxruntime-web/dist/', location.href).href;
  ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page; one thread serves batch 1

  function fail(error) {
    errorBox.textContent = String(error && error.message ? error.message : error);
    throw error;
  }

  function bytesFromBase64(text) {
    const binary = atob(text);
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  function base64FromBytes(bytes) {
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(binary);
  }

  function memoryTask(seed) {
    const description = policy.env;
    if (!description || description.kind !== 'memory') {
      throw new Error(`this page plays the memory tasks; ${policy.name} was trained on ` +
        `${description ? `${description.kind} ${description.name}` : policy.game}`);
    }
    return new MemoryCorridor(description, policy.preprocessing.frame_size, seed);
  }

  function draw(frame) {
    const size = policy.preprocessing.frame_size;
    const image = context.createImageData(size, size);
    for (let i = 0; i < frame.length; i++) {
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = frame[i];
      image.data[4 * i + 3] = 255;
    }
    createImageBitmap(image).then((bitmap) => {
      context.imageSmoothingEnabled = false;
      context.drawImage(bitmap, 0, 0, size * SCALE, size * SCALE);
    });
  }

  function showQ(q, action) {
    const low = Math.min(...q);
    const span = Math.max(...q) - low || 1;
    document.getElementById('q').innerHTML = q.map((value, i) =>
      `<div class="bar${i === action ? ' chosen' : ''}" style="width:${40 + 200 * (value - low) / span}px">` +
      `${policy.actionMeanings[i]} ${value.toFixed(3)}</div>`).join('');
  }

  function showStats() {
    document.getElementById('episodes').textContent = stats.episodes;
    document.getElementById('success').textContent =
      stats.episodes ? `${(100 * stats.successes / stats.episodes).toFixed(1)} %` : '–';
    const seconds = (performance.now() - stats.since) / 1000;
    document.getElementById('rate').textContent = seconds > 0 ? (stats.steps / seconds).toFixed(1) : '–';
  }

  // One agent step per animation frame: the memory task steps once per agent step.
  function play() {
    env = memoryTask(Number(params.get('seed') || 0));
    policy.reset(1);
    let frame = env.reset();
    let busy = false;
    draw(frame);
    function tick() {
      loop = requestAnimationFrame(tick);
      if (paused || busy) return;
      busy = true;
      policy.stepFrame(frame).then((action) => {
        showQ(policy.qValues, action);
        const result = env.step(action);
        stats.steps += 1;
        frame = result.frame;
        if (result.done) {
          stats.episodes += 1;
          stats.successes += result.success ? 1 : 0;
          policy.reset(1);
          frame = env.reset();
        }
        draw(frame);
        showStats();
        busy = false;
      }).catch(fail);
    }
    loop = requestAnimationFrame(tick);
  }

  async function load(bytes, name) {
    if (loop !== null) cancelAnimationFrame(loop);
    policy = await RiseCore.RisePolicy.fromBytes(ort, bytes, { session: { executionProviders: ['wasm'] } }, name);
    document.getElementById('model-name').textContent = `${name}: ${policy.game}, ${policy.metadata['rise.algo']}, ` +
      `${policy.actionMeanings.length} actions`;
    return { game: policy.game, actions: policy.actionMeanings, env: policy.env };
  }

  async function evaluate(episodes = 100, seed = 1) {
    const task = memoryTask(seed);
    let successes = 0;
    for (let e = 0; e < episodes; e++) {
      policy.reset(1);
      let frame = task.reset();
      for (;;) {
        const result = task.step(await policy.stepFrame(frame));
        frame = result.frame;
        if (result.done) { successes += result.success ? 1 : 0; break; }
      }
    }
    return { episodes, successes, success_rate: successes / episodes };
  }

  async function qOnFrames(base64, resets) {
    const frames = bytesFromBase64(base64);
    const size = policy.preprocessing.frame_size;
    const q = [];
    policy.reset(1);
    for (let t = 0; t < frames.length / (size * size); t++) {
      if (resets && resets[t]) policy.reset(1);
      await policy.stepFrame(frames.subarray(t * size * size, (t + 1) * size * size));
      q.push(policy.qValues);
    }
    return q;
  }

  function preprocessScreens(base64, height, width, channels) {
    const screens = bytesFromBase64(base64);
    const per = height * width * channels;
    const size = policy.preprocessing.frame_size;
    const out = new Uint8Array((screens.length / per) * size * size);
    for (let t = 0; t < screens.length / per; t++) {
      out.set(RiseCore.preprocess(screens.subarray(t * per, (t + 1) * per), null, height, width, channels,
        policy.preprocessing), t * size * size);
    }
    return base64FromBytes(out);
  }

  document.getElementById('pause').onclick = (event) => {
    paused = !paused;
    event.target.textContent = paused ? 'play' : 'pause';
  };
  document.getElementById('model-file').onchange = async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      await load(new Uint8Array(await file.arrayBuffer()), file.name);
      play();
    } catch (error) { fail(error); }
  };

  const modelUrl = params.get('model') || 'model.onnx';
  const ready = fetch(modelUrl)
    .then((response) => {
      if (!response.ok) throw new Error(`no model at ${modelUrl} (HTTP ${response.status}): export one with ` +
        `rise-export RUN_DIR --out clients/web/model.onnx, or pick a file above`);
      return response.arrayBuffer();
    })
    .then((buffer) => load(new Uint8Array(buffer), modelUrl))
    .then((info) => {
      if (params.get('autoplay') !== '0') {
        try { play(); } catch (error) { errorBox.textContent = error.message; }
      }
      return info;
    })
    .catch((error) => { errorBox.textContent = error.message; throw error; });

  window.rise = { ready, evaluate, qOnFrames, preprocessScreens, stats: () => Object.assign({}, stats) };
}());

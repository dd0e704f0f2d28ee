"""Runs every benchmark in one process and writes results/bench.json and results/bench.md.

    python -m benchmarks.run --out results [--quick] [--only step_latency,runtime_install]

Ratios are measured side by side in the same run (see each module), never against stored numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import time

from rise_tf.startup import quiet_third_party_startup  # noqa: E402

quiet_third_party_startup()

from benchmarks import (collection, frozen_encoders, gpu_scale, learner_cost, machine, memory_task, replay_cost,  # noqa: E402
                        runtime_install, step_latency, training_throughput)


def _markdown(results: dict) -> str:
    m = results["machine"]
    lines = ["# rise-tf benchmarks", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, GPU: {', '.join(m['gpus']) or 'none'}; "
             f"Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v), "",
             f"Measured {results['date']}" + ("; re-measured since: " + ", ".join(
                 f"{key} {date}" for key, date in results.get("measured", {}).items() if date != results["date"])
                 if any(d != results["date"] for d in results.get("measured", {}).values()) else "") + ".", "", "## Learner update cost (median ms per update, same data)", "",
             "| batch | base (DQN) | RISE-DQN | full-recurrent (k=16) | RISE / base | full-recurrent / RISE |",
             "|---:|---:|---:|---:|---:|---:|"]
    for row in results["learner"]:
        lines.append(f"| {row['batch_size']} | {row['base_update_ms']:.1f} | {row['rise_update_ms']:.1f} | "
                     f"{row['full_recurrent_update_ms']:.1f} | {row['rise_over_base']:.2f} | "
                     f"{row['full_recurrent_over_rise']:.1f} |")
    replay = results["replay"]
    lines += ["", f"## Replay (batch {replay['batch_size']})", "",
              "| model | bytes / stored step | sample p50 ms | sample p99 ms |", "|---|---:|---:|---:|"]
    for name in ("base", "rise", "full_recurrent"):
        r = replay[name]
        lines.append(f"| {name} | {r['bytes_per_step']:.0f} | {r['sample_ms_p50']:.2f} | {r['sample_ms_p99']:.2f} |")
    c = results["collection"]
    lines += ["", f"## Collection ({c['num_envs']} x {c['game']}, emulator frames/s)", "",
              "| lanes step by | with acting (RISE ε-greedy, replay writes) | raw (random actions) | acting / raw |",
              "|---|---:|---:|---:|"]
    for mode in c.get("modes", ("serial", "threads", "processes")):
        acting, raw = c.get(f"{mode}_frames_per_s"), c.get(f"{mode}_raw_frames_per_s")
        lines.append(f"| {mode} | {acting:.0f} | " + (f"{raw:.0f} | {acting / raw:.2f} |" if raw else "- | - |"))
    lines += ["", f"Fastest with acting: **{c['best_mode']}** (vector = ale-py's C++ AtariVectorEnv)."]
    s = results["step_latency"]
    lines += ["", "## Acting step (default RISE network, Pong actions)", "",
              "| step | batch-1 p50 ms | batch-1 p99 ms | slower than ONNX (p50) |", "|---|---:|---:|---:|",
              f"| ONNX step model (onnxruntime, 1 thread) | {s['onnx_b1_p50_ms']:.2f} | {s['onnx_b1_p99_ms']:.2f} | 1.0 |",
              f"| TF policy (TF-Agents PyTFEagerPolicy) | {s['tf_policy_b1_p50_ms']:.2f} | {s['tf_policy_b1_p99_ms']:.2f} | "
              f"{s['tf_policy_over_onnx_p50']:.1f} |",
              f"| TF step function (tf.function) | {s['tf_b1_p50_ms']:.2f} | {s['tf_b1_p99_ms']:.2f} | "
              f"{s['tf_over_onnx_p50']:.1f} |",
              "", f"ONNX batch 32: {s['onnx_b32_steps_per_s']:.0f} steps/s.",
              "", f"ONNX execution providers: {', '.join(s['providers'])}; batch 1 uses one thread."]
    server = s.get("server")
    if server and "runs" in server.get("new", {}):
        local = server["in_process"]
        lines += ["", "## rise-serve on localhost (raw 210x160x3 frames, keep-alive; same workloads, one run)", "",
                  f"In-process `Policy.act` on the same screen: p50 {local['p50_ms']:.2f} ms, p99 {local['p99_ms']:.2f} ms. "
                  f"One client over HTTP adds **{server['new_one_client_added_p50_ms']:.2f} ms** p50 (goal: <= 1 ms).", "",
                  "| server | clients | p50 ms | p99 ms | req/s |", "|---|---:|---:|---:|---:|"]
        for name, label in (("new", "Starlette + uvicorn (today)"), ("old", "http.server, threads (before)")):
            for r in server.get(name, {}).get("runs", []):
                lines.append(f"| {label} | {r['clients']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                             f"{r['requests_per_s']:.0f} |")
    b = results.get("learner_btr")
    if b:
        lines += ["", f"## Learner update cost on the Beyond The Rainbow body (batch {b['batch_size']}, median ms per update)",
                  "", "| BTR | RISE-BTR | full-recurrent BTR (k=16) | RISE-BTR / BTR | full-recurrent / RISE-BTR |",
                  "|---:|---:|---:|---:|---:|",
                  f"| {b['btr_update_ms']:.0f} | {b['rise_btr_update_ms']:.0f} | {b['full_recurrent_update_ms']:.0f} | "
                  f"{b['rise_btr_over_btr']:.3f} | {b['full_over_rise_btr']:.1f} |", "",
                  f"{b['rounds']} interleaved rounds of {b['updates_per_round']['btr']} updates (BTR, RISE-BTR) and "
                  f"{b['updates_per_round']['full_recurrent']} (full-recurrent). RISE-BTR / BTR per round: "
                  f"{', '.join(f'{r:.3f}' for r in b['rise_btr_over_btr_per_round'])}: the spread is machine noise "
                  f"on a ~2 s update, larger than RISE's own cost."]
    m = results.get("memory_task")
    if m:
        lines += ["", "## Memory task: frames and wall-clock to solve (first greedy evaluation >= 95 %, every 2k frames)",
                  "", "| model | body, head | batch | frames to solve | seconds to solve | final success | update ms |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for name, r in m.items():
            frames = f"{r['frames_to_solve']:,}" if r["frames_to_solve"] else f"not in {r['budget_frames']:,}"
            seconds = f"{r['seconds_to_solve']:.0f}" if r["seconds_to_solve"] else "-"
            lines.append(f"| {r['algo']} | {r['learnable_encoder']}, {r['head']} | {r['batch_size']} | {frames} | "
                         f"{seconds} | {r['final_success_rate']:.3f} | {r['update_ms']:.1f} |")
    f = results.get("frozen_encoders")
    if f:
        lines += ["", f"## Frozen encoder ϑ: acting-time cost per {f['frame_size']}x{f['frame_size']} frame "
                      f"(median ms; ϑ alone, tf.function)", "",
                  "| ϑ | weights | batch 1 | batch 8 (per frame) |", "|---|---:|---:|---:|"]
        for name, r in f["encoders"].items():
            lines.append(f"| {name} | {r['weights']:,} | {r['batch1_ms_per_frame']:.2f} | {r['batch8_ms_per_frame']:.2f} |")
        lines += ["", "The pretrained Keras models are timed with random weights (the cost does not depend on them; "
                      "no ImageNet file is on this machine)."]
    r = results.get("runtime_install")
    if r:
        packages = ", ".join(f"{name} {size:.0f}" for name, size in r["base_packages_mb"].items() if size >= 1)
        p = r["preprocessing"]
        lines += ["", "## The runtime alone (fresh venv: `pip install ./serving`)", "",
                  f"Installed size {r['base_venv_mb']:.0f} MB, of which {r['base_without_installer_mb']:.0f} MB is not "
                  f"pip/setuptools (MB: {packages}); with the `play` and `server` extras {r['with_play_server_venv_mb']:.0f} "
                  f"MB. `pip check` clean; the smoke run (TensorFlow and OpenCV blocked) ran on numpy "
                  f"{json.loads(r['base_smoke'])['numpy']}. Install took {r['base_install_seconds']:.0f} s.", "",
                  f"Preprocessing one Atari step (max of two 210x160 RGB screens, gray, area resize to 84x84), "
                  f"median: numpy {p['numpy_ms']:.3f} ms, OpenCV {p['opencv_ms']:.3f} ms "
                  f"({p['numpy_over_opencv']:.1f}x); the frames are identical (tests/test_preprocessing.py)."]
    t = results.get("training")
    if t:
        lines += ["", f"## End-to-end training ({t['game']}, default config: {t['rise']['num_envs']} "
                  f"{t['rise'].get('lanes', 'serial')} lanes, replay ratio "
                  f"{t['rise']['replay_ratio']}, batch {t['rise']['batch_size']}; steady state over {t['timed_frames']:,} frames)",
                  "", "| model | serial frames/s | concurrent frames/s | speed-up | collection alone | learner alone "
                      "| engine efficiency (concurrent / serial) | update ms (serial / concurrent) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, label in (("base", "base (DQN)"), ("rise", "RISE-DQN")):
            r = t[name]
            if "concurrent_frames_per_s" not in r:  # measured before the concurrent engine existed
                lines.append(f"| {label} | {r['frames_per_s']:.0f} | - | - | - | - | - | {r['update_ms']:.1f} / - |")
                continue
            lines.append(f"| {label} | {r['frames_per_s']:.0f} | {r['concurrent_frames_per_s']:.0f} | "
                         f"{r['concurrent_over_serial']:.2f} | {r['collection_only_frames_per_s']:.0f} | "
                         f"{r['learner_only_frames_per_s']:.0f} | {r['efficiency']:.2f} / {r['serial_efficiency']:.2f} | "
                         f"{r['update_ms']:.1f} / {r['concurrent_update_ms']:.1f} |")
        lines += ["", f"RISE-DQN takes {t['rise_over_base_time']:.2f}x the base's wall-clock per frame (serial engine). "
                      "Engine efficiency = frames/s / min(collection alone, learner alone)."]
    c = results.get("compilation")
    if c:
        lines += ["", f"## Learner update: plain tf.function, XLA, mixed precision ({c['device']}, batch {c['batch_size']}, "
                      f"median ms, same data)", "", "| model | plain | XLA (jit_compile) | mixed precision (float16) |",
                  "|---|---:|---:|---:|"]
        for algo in ("dqn", "rise-dqn"):
            r = c[algo]
            lines.append(f"| {algo} | {r['plain']['update_ms']:.1f} | {r['xla']['update_ms']:.1f} "
                         f"({r['xla']['over_plain']:.2f}x) | {r['mixed_precision']['update_ms']:.1f} "
                         f"({r['mixed_precision']['over_plain']:.1f}x) |")
        lines += ["", "Both stay off by default: on this CPU neither pays. Mixed precision is for GPUs with tensor cores "
                      "(rise-train warns when it is asked for on a CPU); the project has no GPU to measure them on."]
    seg = results.get("learner_segments")
    if seg:
        lines += ["", "## Segments (issue 20): learner cost per TD target, Pong-sized random data", "",
                  f"rise-dqn and the full-recurrent model at {seg['targets_per_update']} targets per update, rise-btr "
                  f"at {seg.get('btr_targets_per_update', '-')}; TF-Agents' recurrent DQN (the peer) on "
                  f"{seg.get('peer_batch_size', '-')} sequences of {seg.get('peer_sequence_length', '-')} steps "
                  f"(each transition a target). One run, interleaved rounds.", "",
                  "| model | targets | ms per update | ms per target | vs its m=1 | vs the peer |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, row in seg["models"].items():
            # the peer has no m = 1 of its own; older results have no peer column
            versus_m1 = "-" if name == "tfa_rnn_dqn" else f"{row['over_rise_m1']:.2f}x"
            versus_peer = f"{row['over_peer']:.2f}x" if "over_peer" in row else "-"
            lines.append(f"| {name} | {row.get('targets', seg['targets_per_update'])} | {row['update_ms']:.1f} | "
                         f"{row['target_ms']:.3f} | {versus_m1} | {versus_peer} |")
        lines += ["", "A segment shares its passes (online φ and ψ once per position with the gradient, the target "
                      "network at the bootstrap positions, double-DQN's argmax reused from the online pass). What stays "
                      "per target is one online forward and backward and one target forward, so the saving is the "
                      "argmax pass (rise-dqn) and nothing on rise-btr, whose Munchausen targets need no argmax. The "
                      "peer's CNN reads one frame per step, ours a stack of 4: its first convolution is 4x cheaper "
                      "(`_stack1`: RISE with φ on one frame, `--frame-stack 1`). "
                      "Compare within this table only: sections measured on other days ran on other machines of the "
                      "same size, at other speeds (see the dates above)."]
    g = results.get("btr_scale")
    if g:
        size = g["size"]
        lines += ["", f"## At Beyond The Rainbow's scale on this CPU ({size['num_envs']} Pong envs, batch "
                      f"{size['batch_size']}, concurrent engine; `make bench-gpu` on a GPU)",
                  ""] + gpu_scale.table(g)
    return "\n".join(lines) + "\n"


def rewrite_markdown(out: str) -> None:
    """Re-renders bench.md from bench.json (after a change to the tables, without re-measuring)."""
    with open(os.path.join(out, "bench.json")) as f:
        results = json.load(f)
    with open(os.path.join(out, "bench.md"), "w") as f:
        f.write(_markdown(results))


# (key in bench.json, what it measures, the measurement: quick -> result), in the order they run.
SECTIONS = [
    ("learner", "learner update cost",
     lambda quick: [learner_cost.measure(rounds=3 if quick else 8, batch_size=b) for b in (32, 128)]),
    ("replay", "replay", lambda quick: replay_cost.measure(repeats=50 if quick else 200)),
    ("collection", "collection", lambda quick: collection.measure(steps=40 if quick else 150)),
    ("step_latency", "step-model latency (ONNX vs TF) and rise-serve, today's vs the first",
     lambda quick: step_latency.measure(steps=100 if quick else 300)),
    ("frozen_encoders", "frozen encoders: acting-time cost per frame",
     lambda quick: frozen_encoders.measure(repeats=20 if quick else 50)),
    ("runtime_install", "the runtime alone: fresh venv size, smoke run, preprocessing cost",
     lambda quick: runtime_install.measure(repeats=500 if quick else 2000)),
    ("training", "end-to-end training throughput",
     lambda quick: training_throughput.measure(timed_frames=4_000 if quick else 16_000)),
    ("compilation", "learner update: plain, XLA, mixed precision",
     lambda quick: learner_cost.measure_compilation(rounds=2 if quick else 4)),
    ("btr_scale", "btr and rise-btr at BTR's scale (64 envs, batch 256): learner alone vs collection alone",
     lambda quick: gpu_scale.measure(quick=quick, cpu=True)),
    ("learner_segments", "learner cost per update and per TD target with segments (issue 20), beside the peer",
     lambda quick: learner_cost.measure_segments(rounds=2 if quick else 4)),
    ("learner_btr", "learner update cost on the BTR body (minutes: full recurrence over Impala x2)",
     lambda quick: learner_cost.measure_btr(rounds=2 if quick else 4)),
    ("memory_task", "memory task: frames and wall-clock to solve, rise-dqn and rise-btr",
     lambda quick: memory_task.measure(budget_frames=6_000 if quick else 20_000)),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results", help="directory for bench.json and bench.md")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, noisier)")
    parser.add_argument("--only", default=None, metavar="SECTIONS",
                        help="re-measure only these sections (comma list) and keep the others from bench.json: "
                             + ", ".join(key for key, _, _ in SECTIONS))
    args = parser.parse_args()
    keys = [key for key, _, _ in SECTIONS]
    only = keys if args.only is None else [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = sorted(set(only) - set(keys))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {keys}")
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    path = os.path.join(args.out, "bench.json")
    results = {}
    if args.only is not None and os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    results.update({"date": results.get("date", now) if args.only else now, "machine": machine.describe()})
    measured = results.setdefault("measured", {})
    for key, label, measure in SECTIONS:
        if key in only:
            print(f"[bench] {label} ...", flush=True)
            results[key] = measure(args.quick)
            measured[key] = now
    t = results.get("training", {}).get("rise", {})
    if "efficiency" in t:  # the issue-10 figure, next to what it is made of
        results["engine"] = {key: t[key] for key in ("efficiency", "concurrent_frames_per_s", "frames_per_s",
                                                     "collection_only_frames_per_s", "learner_only_frames_per_s")}
        results["engine"]["model"] = "rise-dqn"
    os.makedirs(args.out, exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    markdown = _markdown(results)
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

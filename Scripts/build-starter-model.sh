#!/usr/bin/env bash
# Rebuilds the starter model compiled into pitchfilter from samples/corpus. Run it after changing the samples
# or the tokenizer; StarterModelTests fails until you do.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product pitchfilter
.build/release/pitchfilter starter-model --pitch samples/corpus/pitch --ham samples/corpus/ham \
    --sent samples/corpus/sent \
    --output Sources/PitchEngine/StarterModelData.swift

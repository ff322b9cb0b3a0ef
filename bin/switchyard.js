#!/usr/bin/env node
import '../dist/core/cli/bin.js';

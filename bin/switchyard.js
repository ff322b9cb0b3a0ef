#!/usr/bin/env node
import '../dist/core/cli/main.js';

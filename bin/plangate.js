#!/usr/bin/env node
import "../dist/cli/plangate.js";

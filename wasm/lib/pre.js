// Applies diskwright's runtime patches (wasm/lib/diskwright-library.js) before the FS starts.
Module['preRun'] = [function() { dwPatchRuntime(Module); }].concat(Module['preRun'] || []);

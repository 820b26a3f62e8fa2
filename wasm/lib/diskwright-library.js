/**
 * Emscripten 3.1.6 library overrides for e2fsprogs under NODERAWFS (linked with --js-library).
 * Each override fixes one trap listed in docs/e2fs.md; they are plain JS run inside the module.
 */
mergeInto(LibraryManager.library, {
  // Trap 2: the stock fd_pread/fd_pwrite drop the high 32 bits of the offset, which silently
  // corrupts every access past 4 GiB. Offsets are rebuilt as high * 2^32 + low.
  fd_pread: function(fd, iov, iovcnt, {{{ defineI64Param('offset') }}}, pnum) {
    {{{ receiveI64ParamAsI32s('offset') }}}
    try {
      var stream = SYSCALLS.getStreamFromFD(fd);
      var offset = offset_high * 4294967296 + (offset_low >>> 0);
      var num = SYSCALLS.doReadv(stream, iov, iovcnt, offset);
      {{{ makeSetValue('pnum', 0, 'num', 'i32') }}};
      return 0;
    } catch (e) {
      if (typeof FS == 'undefined' || !(e instanceof FS.ErrnoError)) throw e;
      return e.errno;
    }
  },
  fd_pread__deps: ['$SYSCALLS', '$FS'],
  fd_pwrite: function(fd, iov, iovcnt, {{{ defineI64Param('offset') }}}, pnum) {
    {{{ receiveI64ParamAsI32s('offset') }}}
    try {
      var stream = SYSCALLS.getStreamFromFD(fd);
      var offset = offset_high * 4294967296 + (offset_low >>> 0);
      var num = SYSCALLS.doWritev(stream, iov, iovcnt, offset);
      {{{ makeSetValue('pnum', 0, 'num', 'i32') }}};
      return 0;
    } catch (e) {
      if (typeof FS == 'undefined' || !(e instanceof FS.ErrnoError)) throw e;
      return e.errno;
    }
  },
  fd_pwrite__deps: ['$SYSCALLS', '$FS'],

  // Trap 3: unknown ioctls (BLKROGET, BLKGETSIZE64, …) abort the stock runtime; Linux answers
  // ENOTTY for them on regular files, which is what e2fsprogs expects.
  __syscall_ioctl: function(fd, op, varargs) {
    var stream = FS.getStream(fd);
    if (!stream) return -{{{ cDefine('EBADF') }}};
    switch (op) {
      case {{{ cDefine('TCGETA') }}}:
      case {{{ cDefine('TCGETS') }}}:
      case {{{ cDefine('TCSETA') }}}:
      case {{{ cDefine('TCSETAW') }}}:
      case {{{ cDefine('TCSETAF') }}}:
      case {{{ cDefine('TCSETS') }}}:
      case {{{ cDefine('TCSETSW') }}}:
      case {{{ cDefine('TCSETSF') }}}:
      case {{{ cDefine('TIOCGWINSZ') }}}:
        return stream.tty ? 0 : -{{{ cDefine('ENOTTY') }}};
      default:
        return -{{{ cDefine('ENOTTY') }}};
    }
  },
  __syscall_ioctl__deps: ['$FS'],

  // Trap 13: emscripten's libc has no fallocate(), so configure disabled it and e2fsprogs wrote
  // zeros instead of punching holes (images allocated their inode tables and journal, and
  // s_kbytes_written differed from host-made images). This fallocate supports what unix_io uses:
  // mode 0 (extend) and PUNCH_HOLE|KEEP_SIZE (discard/zeroout: the range reads as zeros after).
  fallocate: function(fd, mode, off_low, off_high, len_low, len_high) {
    var nodeFs = require('fs');
    var stream = FS.getStream(fd);
    if (!stream) { setErrNo({{{ cDefine('EBADF') }}}); return -1; }
    var offset = off_high * 4294967296 + (off_low >>> 0);
    var length = len_high * 4294967296 + (len_low >>> 0);
    if (offset < 0 || length <= 0) { setErrNo({{{ cDefine('EINVAL') }}}); return -1; }
    if (stream.dwDisk) {
      try {
        FS.dwDiskFallocate(stream, mode, offset, length);
        return 0;
      } catch (e) {
        if (!(e instanceof FS.ErrnoError)) throw e;
        setErrNo(e.errno);
        return -1;
      }
    }
    if (stream.stream_ops || typeof stream.nfd !== 'number') { setErrNo({{{ cDefine('EOPNOTSUPP') }}}); return -1; }
    try {
      var stat = nodeFs.fstatSync(stream.nfd);
      if (!stat.isFile()) { setErrNo({{{ cDefine('EOPNOTSUPP') }}}); return -1; }
      if (mode === 0) {
        if (offset + length > stat.size) nodeFs.ftruncateSync(stream.nfd, offset + length);
        return 0;
      }
      if (mode !== 3) { setErrNo({{{ cDefine('EOPNOTSUPP') }}}); return -1; }
      // A file without allocated blocks (a fresh sparse image) already reads as zeros.
      if (stat.blocks === 0) return 0;
      var end = Math.min(offset + length, stat.size);
      var CHUNK = 1048576;
      var buffer = Buffer.alloc(CHUNK);
      var zeros = Buffer.alloc(CHUNK);
      for (var at = offset; at < end; at += CHUNK) {
        var n = nodeFs.readSync(stream.nfd, buffer, 0, Math.min(CHUNK, end - at), at);
        if (n === 0) break;
        if (!buffer.subarray(0, n).equals(zeros.subarray(0, n))) nodeFs.writeSync(stream.nfd, zeros, 0, n, at);
      }
      return 0;
    } catch (e) {
      setErrNo((e && e.code && ERRNO_CODES[e.code]) || {{{ cDefine('EIO') }}});
      return -1;
    }
  },
  fallocate__deps: ['$FS', '$setErrNo', '$ERRNO_CODES'],

  // The stock getdents64 lstat()s every entry twice (lookupNode → lookupPath + getMode) only to
  // fill d_ino/d_type; mke2fs -d lstat()s each entry itself anyway. Types come from
  // readdir(withFileTypes); d_ino is the entry's index (nonzero; nothing here reads it).
  __syscall_getdents64__deps: ['$FS', '$SYSCALLS', '$ERRNO_CODES'],
  __syscall_getdents64: function(fd, dirp, count) {
    try {
      var stream = SYSCALLS.getStreamFromFD(fd);
      if (!stream.getdents && stream.dwTree) {
        stream.getdents = [{ name: '.', type: 4 }, { name: '..', type: 4 }].concat(FS.dwTreeReaddir(stream));
      }
      if (!stream.getdents) {
        var entries = require('fs').readdirSync(stream.path, { withFileTypes: true });
        var list = [{ name: '.', type: 4 }, { name: '..', type: 4 }];
        for (var i = 0; i < entries.length; i++) {
          var e = entries[i];
          list.push({ name: e.name, type: e.isDirectory() ? 4 : e.isSymbolicLink() ? 10 : e.isCharacterDevice() ? 2 :
            e.isBlockDevice() ? 6 : e.isFIFO() ? 1 : e.isSocket() ? 12 : 8 });
        }
        stream.getdents = list;
      }
      var struct_size = {{{ C_STRUCTS.dirent.__size__ }}};
      var pos = 0;
      var off = FS.llseek(stream, 0, {{{ cDefine('SEEK_CUR') }}});
      var idx = Math.floor(off / struct_size);
      while (idx < stream.getdents.length && pos + struct_size <= count) {
        var entry = stream.getdents[idx];
        {{{ makeSetValue('dirp + pos', C_STRUCTS.dirent.d_ino, 'idx + 1', 'i64') }}};
        {{{ makeSetValue('dirp + pos', C_STRUCTS.dirent.d_off, '(idx + 1) * struct_size', 'i64') }}};
        {{{ makeSetValue('dirp + pos', C_STRUCTS.dirent.d_reclen, C_STRUCTS.dirent.__size__, 'i16') }}};
        {{{ makeSetValue('dirp + pos', C_STRUCTS.dirent.d_type, 'entry.type', 'i8') }}};
        stringToUTF8(entry.name, dirp + pos + {{{ C_STRUCTS.dirent.d_name }}}, 256);
        pos += struct_size;
        idx += 1;
      }
      FS.llseek(stream, idx * struct_size, {{{ cDefine('SEEK_SET') }}});
      return pos;
    } catch (e) {
      if (typeof FS != 'undefined' && e instanceof FS.ErrnoError) return -e.errno;
      if (e && e.code && ERRNO_CODES[e.code] !== undefined) return -ERRNO_CODES[e.code];
      throw e;
    }
  },

  // MMP (lib/ext2fs/mmp.c, patched by build.sh): a real sleep that yields the core, and the
  // host's name as the MMP node name (emscripten's libc busy-waits and answers "emscripten").
  dw_sleep: function(seconds) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, seconds * 1000);
    return 0;
  },
  dw_gethostname: function(name, len) {
    stringToUTF8(require('os').hostname(), name, len);
    return 0;
  },

  // asctime() of 64-bit seconds, UTC (time_t is 32-bit in this libc; e2fsck's print_time calls
  // this for times that do not fit, e.g. E2FSCK_TIME past 2038, instead of printing 1901).
  dw_asctime64: function(seconds, buf) {
    var d = new Date(seconds * 1000);
    var two = function(n) { return (n < 10 ? '0' : '') + n; };
    var text = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()] + ' ' +
      ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()] + ' ' +
      (d.getUTCDate() < 10 ? ' ' : '') + d.getUTCDate() + ' ' + two(d.getUTCHours()) + ':' + two(d.getUTCMinutes()) + ':' +
      two(d.getUTCSeconds()) + ' ' + d.getUTCFullYear() + '\n';
    stringToUTF8(text, buf, 32);
  },

  // Trap 5: e2fsck's logfile code links daemon(); there is no process model to detach from.
  daemon: function(nochdir, noclose) {
    return -1;
  },

  // Fills a struct stat from a bigint fs.Stats (nanosecond times: trap 6).
  $dwWriteStat: function(buf, stat) {
    // BigInt literals are avoided: emscripten 3.1.6's terser cannot print them.
    var NS_PER_S = BigInt(1000000000);
    var NS_WRAP32 = BigInt(4294967296);
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_dev, 'Number(stat.dev)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.__st_dev_padding, '0', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.__st_ino_truncated, 'Number(stat.ino % NS_WRAP32)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_mode, 'Number(stat.mode)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_nlink, 'Number(stat.nlink)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_uid, 'Number(stat.uid)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_gid, 'Number(stat.gid)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_rdev, 'Number(stat.rdev)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.__st_rdev_padding, '0', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_size, 'Number(stat.size)', 'i64') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_blksize, '4096', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_blocks, 'Number(stat.blocks)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_atim.tv_sec, 'Number(stat.atimeNs / NS_PER_S)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_atim.tv_nsec, 'Number(stat.atimeNs % NS_PER_S)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_mtim.tv_sec, 'Number(stat.mtimeNs / NS_PER_S)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_mtim.tv_nsec, 'Number(stat.mtimeNs % NS_PER_S)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_ctim.tv_sec, 'Number(stat.ctimeNs / NS_PER_S)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_ctim.tv_nsec, 'Number(stat.ctimeNs % NS_PER_S)', 'i32') }}};
    {{{ makeSetValue('buf', C_STRUCTS.stat.st_ino, 'Number(stat.ino)', 'i64') }}};
    return 0;
  },

  // fstat() on a host fd asks the fd, not the path again.
  __syscall_fstat64__deps: ['$FS', '$SYSCALLS', '$dwWriteStat', '$ERRNO_CODES'],
  __syscall_fstat64: function(fd, buf) {
    try {
      var stream = SYSCALLS.getStreamFromFD(fd);
      if (stream.dwStat) return dwWriteStat(buf, stream.dwStat());
      if (stream.dwStd || stream.stream_ops || typeof stream.nfd !== 'number') return SYSCALLS.doStat(FS.stat, stream.path, buf);
      return dwWriteStat(buf, require('fs').fstatSync(stream.nfd, { bigint: true }));
    } catch (e) {
      if (typeof FS != 'undefined' && e instanceof FS.ErrnoError) return -e.errno;
      if (e && e.code && ERRNO_CODES[e.code] !== undefined) return -ERRNO_CODES[e.code];
      throw e;
    }
  },

  // fsync/fdatasync reach a Disk's flush(); host files keep the stock behaviour (no-op: the
  // callers fsync the files they publish themselves).
  fd_sync__deps: ['$FS', '$SYSCALLS'],
  fd_sync: function(fd) {
    try {
      var stream = SYSCALLS.getStreamFromFD(fd);
      if (stream.dwDisk) FS.dwDiskFlush(stream);
      return 0;
    } catch (e) {
      if (typeof FS == 'undefined' || !(e instanceof FS.ErrnoError)) throw e;
      return e.errno;
    }
  },
  __syscall_fdatasync__deps: ['$FS', '$SYSCALLS'],
  __syscall_fdatasync: function(fd) {
    var stream = SYSCALLS.getStreamFromFD(fd);
    if (stream.dwDisk) FS.dwDiskFlush(stream);
    return 0;
  },

  // Extended attributes for mke2fs -d (emscripten's libc has no xattr calls at all, so the
  // build used to compile set_inode_xattr() out and drop every xattr). Names and values come
  // from a Tree (Module.dw.trees) or from the host through Module.dw.hostXattr.
  $dwXattrCall__deps: ['$FS', '$setErrNo'],
  $dwXattrCall: function(fn) {
    try {
      return fn();
    } catch (e) {
      if (typeof FS == 'undefined' || !(e instanceof FS.ErrnoError)) throw e;
      setErrNo(e.errno);
      return -1;
    }
  },
  $dwXattrList__deps: ['$FS', '$dwXattrCall'],
  $dwXattrList: function(path, list, size, follow) {
    return dwXattrCall(function() {
      var names = FS.dwListXattr(UTF8ToString(path), follow);
      // "name\0name\0…", as the kernel returns it.
      var bytes = Buffer.from(names.map(function(name) { return name + '\0'; }).join(''), 'utf8');
      if (size === 0) return bytes.length;
      if (bytes.length > size) throw new FS.ErrnoError({{{ cDefine('ERANGE') }}});
      HEAPU8.set(bytes, list);
      return bytes.length;
    });
  },
  $dwXattrGet__deps: ['$FS', '$dwXattrCall'],
  $dwXattrGet: function(path, name, value, size, follow) {
    return dwXattrCall(function() {
      var bytes = FS.dwGetXattr(UTF8ToString(path), UTF8ToString(name), follow);
      if (bytes === null) throw new FS.ErrnoError({{{ cDefine('ENODATA') }}});
      if (size === 0) return bytes.length;
      if (bytes.length > size) throw new FS.ErrnoError({{{ cDefine('ERANGE') }}});
      HEAPU8.set(bytes, value);
      return bytes.length;
    });
  },
  llistxattr__deps: ['$dwXattrList'],
  llistxattr: function(path, list, size) { return dwXattrList(path, list, size, false); },
  listxattr__deps: ['$dwXattrList'],
  listxattr: function(path, list, size) { return dwXattrList(path, list, size, true); },
  lgetxattr__deps: ['$dwXattrGet'],
  lgetxattr: function(path, name, value, size) { return dwXattrGet(path, name, value, size, false); },
  getxattr__deps: ['$dwXattrGet'],
  getxattr: function(path, name, value, size) { return dwXattrGet(path, name, value, size, true); },

  /**
   * Runtime patches applied from preRun (wasm/lib/pre.js), before FS.init. Options come from
   * Module.dw: { env, cwd, tty: [bool,bool,bool], stdin: Uint8Array, sparse, onOutput(fd, bytes),
   * onOpen(nfd), onClose(nfd), disks: {absPath: Disk}, trees: {absRoot: Tree},
   * hostXattr: {list(path), get(path, name)}, onHookError(error) } (docs/e2fs.md, "Hooks").
   */
  $dwPatchRuntime__deps: ['$FS', '$SYSCALLS', '$ENV', '$ERRNO_CODES', '$dwWriteStat', '$NODEFS', '$NODERAWFS'],
  $dwPatchRuntime: function(Module) {
    var opts = Module['dw'] || {};
    var nodeFs = require('fs');
    var hostError = function(e) {
      if (e && e.code && ERRNO_CODES[e.code] !== undefined) return new FS.ErrnoError(ERRNO_CODES[e.code]);
      return e;
    };
    var O_ACCMODE = 3;
    // O_DIRECT (musl's 040000; not in emscripten's struct_info): accepted and dropped. Direct I/O
    // only bypasses the page cache, which a single host shares anyway (MMP, e2fsck -D, u_direct_io).
    var O_DIRECT = 16384;
    var S_IFREG = 32768;
    var S_IFDIR = 16384;
    var S_IFLNK = 40960;
    var S_IFMT = 61440;

    // Trap 11: getenv() sees only ENV, never process.env.
    var env = opts['env'] || {};
    for (var key in env) ENV[key] = env[key];

    // Worker threads cannot process.chdir(), and mke2fs -d chdir()s through the source tree (it
    // recursed forever). Keep a virtual cwd: FS.cwd/chdir use it and relative paths given to the
    // host FS are resolved against it.
    var nodePath = require('path');
    var cwd = opts['cwd'] || process.cwd();
    var resolvePath = function(path) {
      return typeof path === 'string' && path !== '' && path[0] !== '/' ? nodePath.resolve(cwd, path) : path;
    };
    var absolute = function(path) { return nodePath.resolve(cwd, path); };

    // A hook object (Disk, Tree) that throws gets EIO; the first error is reported to the caller.
    var onHookError = opts['onHookError'] || function() {};
    var hookCall = function(fn) {
      try {
        return fn();
      } catch (e) {
        if (e instanceof FS.ErrnoError) throw e;
        onHookError(e);
        throw new FS.ErrnoError({{{ cDefine('EIO') }}});
      }
    };

    // --- Disk hook: paths served by a Disk object (src/disk/types.ts) instead of a host file.
    var disks = opts['disks'] || null;
    var diskNames = disks ? Object.keys(disks) : [];
    var diskFor = function(path) {
      if (!disks || typeof path !== 'string' || path === '') return null;
      var key = absolute(path);
      return Object.prototype.hasOwnProperty.call(disks, key) ? { disk: disks[key], ino: diskNames.indexOf(key) + 1 } : null;
    };
    var now = BigInt(Date.now()) * BigInt(1000000);
    var diskStat = function(entry) {
      var disk = entry.disk;
      var size = disk.size;
      return { dev: 0, ino: BigInt(entry.ino), mode: S_IFREG | (disk.readOnly ? 292 : 420), nlink: 1,
        uid: process.getuid ? process.getuid() : 0, gid: process.getgid ? process.getgid() : 0, rdev: 0,
        size: size, blocks: Math.ceil(size / 512), atimeNs: now, mtimeNs: now, ctimeNs: now };
    };
    var openDisk = function(path, flags, entry, suggestFD) {
      var disk = entry.disk;
      if (disk.readOnly && (flags & O_ACCMODE) !== 0) throw new FS.ErrnoError({{{ cDefine('EROFS') }}});
      if ((flags & {{{ cDefine('O_DIRECTORY') }}})) throw new FS.ErrnoError({{{ cDefine('ENOTDIR') }}});
      // O_CREAT/O_EXCL/O_TRUNC are ignored, as for a block device: the Disk exists and keeps its size.
      var fd = suggestFD != null ? suggestFD : FS.nextfd();
      var stat = function() { return diskStat(entry); };
      var node = { id: entry.ino, mode: stat().mode, node_ops: NODERAWFS, path: path };
      var stream = { fd: fd, position: 0, path: path, flags: flags, node: node, seekable: true, dwDisk: disk, dwStat: stat };
      FS.streams[fd] = stream;
      return stream;
    };
    var heapBytes = function(buffer, offset, length) {
      return new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length);
    };
    var diskRead = function(stream, buffer, offset, length, position) {
      if ((stream.flags & O_ACCMODE) === 1) throw new FS.ErrnoError({{{ cDefine('EBADF') }}});
      var seeking = typeof position === 'number';
      var at = seeking ? position : stream.position;
      var disk = stream.dwDisk;
      var n = Math.max(0, Math.min(length, disk.size - at));
      if (n > 0) hookCall(function() { disk.read(heapBytes(buffer, offset, n), at); });
      if (!seeking) stream.position += n;
      return n;
    };
    var diskWrite = function(stream, buffer, offset, length, position) {
      if ((stream.flags & O_ACCMODE) === 0) throw new FS.ErrnoError({{{ cDefine('EBADF') }}});
      var seeking = typeof position === 'number';
      var at = seeking ? position : stream.position;
      var disk = stream.dwDisk;
      if (disk.readOnly) throw new FS.ErrnoError({{{ cDefine('EROFS') }}});
      if (at + length > disk.size) {
        // Past the end: a growable Disk grows (as a file would), a fixed one is full (as a device is).
        if (typeof disk.resize !== 'function') throw new FS.ErrnoError({{{ cDefine('ENOSPC') }}});
        hookCall(function() { disk.resize(at + length); });
      }
      // A copy: the Disk may keep the bytes (an overlay), and the heap is reused after the call.
      if (length > 0) hookCall(function() { disk.write(heapBytes(buffer, offset, length).slice(), at); });
      if (!seeking) stream.position += length;
      return length;
    };
    var diskResize = function(stream, size) {
      var disk = stream.dwDisk;
      if ((stream.flags & O_ACCMODE) === 0) throw new FS.ErrnoError({{{ cDefine('EINVAL') }}});
      if (size === disk.size) return;
      if (disk.readOnly) throw new FS.ErrnoError({{{ cDefine('EROFS') }}});
      if (typeof disk.resize !== 'function') throw new FS.ErrnoError({{{ cDefine('EINVAL') }}});
      hookCall(function() { disk.resize(size); });
    };
    FS.dwDiskFlush = function(stream) { hookCall(function() { stream.dwDisk.flush(); }); };
    // unix_io's discard and zeroout: PUNCH_HOLE|KEEP_SIZE (3) and ZERO_RANGE (16) both leave the
    // range reading as zeros, which is what Disk.discard promises; mode 0 only ever extends.
    FS.dwDiskFallocate = function(stream, mode, offset, length) {
      var disk = stream.dwDisk;
      if ((stream.flags & O_ACCMODE) === 0) throw new FS.ErrnoError({{{ cDefine('EBADF') }}});
      if (disk.readOnly) throw new FS.ErrnoError({{{ cDefine('EROFS') }}});
      if (mode === 0) {
        if (offset + length > disk.size) diskResize(stream, offset + length);
        return;
      }
      if (mode !== 3 && mode !== 16) throw new FS.ErrnoError({{{ cDefine('EOPNOTSUPP') }}});
      var end = Math.min(offset + length, disk.size);
      if (end > offset) hookCall(function() { disk.discard(offset, end - offset); });
    };

    // --- Tree hook: directory trees that are not on the host (mke2fs -d from an archive).
    var trees = opts['trees'] || null;
    var treeRoots = trees ? Object.keys(trees).sort(function(a, b) { return b.length - a.length; }) : [];
    var treeDevs = {};
    treeRoots.forEach(function(root, i) { treeDevs[root] = 0x7d770000 + i; });
    var treeFor = function(path) {
      if (!trees || typeof path !== 'string' || path === '') return null;
      var full = absolute(path);
      for (var i = 0; i < treeRoots.length; i++) {
        var root = treeRoots[i];
        if (full === root) return { tree: trees[root], root: root, rel: '' };
        if (full.length > root.length && full.slice(0, root.length + 1) === (root === '/' ? '/' : root + '/')) {
          return { tree: trees[root], root: root, rel: full.slice(root === '/' ? 1 : root.length + 1) };
        }
      }
      return null;
    };
    var treeStatOf = function(where, st) {
      return { dev: treeDevs[where.root], ino: BigInt(st.ino), mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid,
        rdev: st.rdev, size: st.size, blocks: Math.ceil(Number(st.size) / 512),
        atimeNs: BigInt(st.atimeNs), mtimeNs: BigInt(st.mtimeNs), ctimeNs: BigInt(st.ctimeNs) };
    };
    // Follows symlinks inside the tree (absolute targets are relative to the tree's root, as in
    // the image being built); returns { where, st } or throws ENOENT/ELOOP.
    var treeLookup = function(where, follow) {
      for (var hops = 0; hops < 40; hops++) {
        var st = hookCall(function() { return where.tree.lstat(where.rel); });
        if (!st) throw new FS.ErrnoError({{{ cDefine('ENOENT') }}});
        if (!follow || (st.mode & S_IFMT) !== S_IFLNK) return { where: where, st: st };
        var target = hookCall(function() { return where.tree.readlink(where.rel); });
        var base = target[0] === '/' ? '' : nodePath.posix.dirname('/' + where.rel);
        var rel = nodePath.posix.resolve('/', base, target).slice(1);
        where = { tree: where.tree, root: where.root, rel: rel };
      }
      throw new FS.ErrnoError({{{ cDefine('ELOOP') }}});
    };
    var openTree = function(path, flags, where, suggestFD) {
      if ((flags & O_ACCMODE) !== 0 || (flags & ({{{ cDefine('O_CREAT') }}} | {{{ cDefine('O_TRUNC') }}}))) {
        throw new FS.ErrnoError({{{ cDefine('EROFS') }}});
      }
      var found = treeLookup(where, !(flags & {{{ cDefine('O_NOFOLLOW') }}}));
      var mode = found.st.mode & S_IFMT;
      if (mode === S_IFLNK) throw new FS.ErrnoError({{{ cDefine('ELOOP') }}});
      if ((flags & {{{ cDefine('O_DIRECTORY') }}}) && mode !== S_IFDIR) throw new FS.ErrnoError({{{ cDefine('ENOTDIR') }}});
      var fd = suggestFD != null ? suggestFD : FS.nextfd();
      var st = treeStatOf(found.where, found.st);
      var node = { id: Number(found.st.ino), mode: found.st.mode, node_ops: NODERAWFS, path: path };
      var stream = { fd: fd, position: 0, path: path, flags: flags, node: node, seekable: true,
        dwTree: found.where, dwStat: function() { return st; } };
      FS.streams[fd] = stream;
      return stream;
    };
    var treeRead = function(stream, buffer, offset, length, position) {
      var seeking = typeof position === 'number';
      var at = seeking ? position : stream.position;
      if ((stream.node.mode & S_IFMT) === S_IFDIR) throw new FS.ErrnoError({{{ cDefine('EISDIR') }}});
      var where = stream.dwTree;
      var n = length > 0 ? hookCall(function() { return where.tree.read(where.rel, heapBytes(buffer, offset, length), at); }) : 0;
      if (!seeking) stream.position += n;
      return n;
    };
    FS.dwTreeReaddir = function(stream) {
      var where = stream.dwTree;
      return hookCall(function() { return where.tree.readdir(where.rel); }).map(function(entry) {
        return { name: entry.name, type: entry.type };
      });
    };

    // --- Extended attributes (llistxattr & co.): Tree, else host (Module.dw.hostXattr).
    var hostXattr = opts['hostXattr'] || null;
    var noXattrSupport = function() {
      // Loud, not silent: mke2fs treats ENOTSUP as "no xattrs here" and would drop them.
      throw new FS.ErrnoError({{{ cDefine('ENOSYS') }}});
    };
    FS.dwListXattr = function(path, follow) {
      var where = treeFor(path);
      if (where) {
        var found = treeLookup(where, follow);
        return hookCall(function() { return found.where.tree.listxattr(found.where.rel); });
      }
      if (diskFor(path)) return [];
      if (!hostXattr) noXattrSupport();
      try { return hostXattr.list(absolute(path), follow); } catch (e) { throw hostError(e); }
    };
    FS.dwGetXattr = function(path, name, follow) {
      var where = treeFor(path);
      if (where) {
        var found = treeLookup(where, follow);
        var value = hookCall(function() { return found.where.tree.getxattr(found.where.rel, name); });
        return value === null || value === undefined ? null : value;
      }
      if (diskFor(path)) return null;
      if (!hostXattr) noXattrSupport();
      var bytes;
      try { bytes = hostXattr.get(absolute(path), name, follow); } catch (e) { throw hostError(e); }
      return bytes === null || bytes === undefined ? null : bytes;
    };

    FS.cwd = function() { return cwd; };
    FS.chdir = function(path) {
      var target = resolvePath(path);
      var where = treeFor(target);
      if (where) {
        var found = treeLookup(where, true);
        if ((found.st.mode & S_IFMT) !== S_IFDIR) throw new FS.ErrnoError({{{ cDefine('ENOTDIR') }}});
        cwd = absolute(target);
        return;
      }
      var stat;
      try { stat = nodeFs.statSync(target); } catch (e) { throw new FS.ErrnoError(ERRNO_CODES[e.code] || {{{ cDefine('ENOENT') }}}); }
      if (!stat.isDirectory()) throw new FS.ErrnoError({{{ cDefine('ENOTDIR') }}});
      cwd = target;
    };
    // open() without NODERAWFS's extra lstat (getMode) per file: the mode comes from fstat.
    var rawOpen = FS.open;
    FS.open = function(path, flags, mode, suggestFD) {
      if (typeof flags !== 'number' || typeof path !== 'string') return rawOpen.apply(this, arguments);
      var disk = diskFor(path);
      if (disk) return openDisk(path, flags, disk, suggestFD);
      var where = treeFor(path);
      if (where) return openTree(path, flags, where, suggestFD);
      var nfd;
      try { nfd = nodeFs.openSync(path, NODEFS.flagsForNode(flags & ~O_DIRECT), mode); } catch (e) { throw hostError(e); }
      var st;
      try { st = nodeFs.fstatSync(nfd); } catch (e) { nodeFs.closeSync(nfd); throw hostError(e); }
      if ((flags & {{{ cDefine('O_DIRECTORY') }}}) && !st.isDirectory()) {
        nodeFs.closeSync(nfd);
        throw new FS.ErrnoError({{{ cDefine('ENOTDIR') }}});
      }
      var fd = suggestFD != null ? suggestFD : FS.nextfd(nfd);
      var node = { id: st.ino, mode: st.mode, node_ops: NODERAWFS, path: path };
      var stream = { fd: fd, nfd: nfd, position: 0, path: path, flags: flags, node: node, seekable: true };
      FS.streams[fd] = stream;
      return stream;
    };
    ['lookupPath', 'mknod', 'mkdir', 'rmdir', 'readdir', 'unlink', 'readlink', 'stat', 'lstat',
     'chmod', 'chown', 'truncate', 'utime', 'open'].forEach(function(name) {
      var original = FS[name];
      if (typeof original !== 'function') return;
      FS[name] = function(path) {
        var args = Array.prototype.slice.call(arguments);
        args[0] = resolvePath(path);
        return original.apply(this, args);
      };
    });
    var symlink = FS.symlink;
    FS.symlink = function(target, linkpath) { return symlink(target, resolvePath(linkpath)); };
    var rename = FS.rename;
    FS.rename = function(from, to) { return rename(resolvePath(from), resolvePath(to)); };
    var readlink = FS.readlink;
    FS.readlink = function(path) {
      var where = treeFor(path);
      if (where) {
        var found = treeLookup(where, false);
        if ((found.st.mode & S_IFMT) !== S_IFLNK) throw new FS.ErrnoError({{{ cDefine('EINVAL') }}});
        return hookCall(function() { return where.tree.readlink(where.rel); });
      }
      if (diskFor(path)) throw new FS.ErrnoError({{{ cDefine('EINVAL') }}});
      return readlink.apply(this, arguments);
    };
    var llseek = FS.llseek;
    FS.llseek = function(stream, offset, whence) {
      if (!stream.dwStat) return llseek.apply(this, arguments);
      var position = offset;
      if (whence === {{{ cDefine('SEEK_CUR') }}}) position += stream.position;
      else if (whence === {{{ cDefine('SEEK_END') }}}) position += Number(stream.dwStat().size);
      else if (whence !== {{{ cDefine('SEEK_SET') }}}) throw new FS.ErrnoError({{{ cDefine('EINVAL') }}});
      if (position < 0) throw new FS.ErrnoError({{{ cDefine('EINVAL') }}});
      stream.position = position;
      return position;
    };
    var ftruncate = FS.ftruncate;
    FS.ftruncate = function(fd, length) {
      var stream = FS.getStream(fd);
      if (stream && stream.dwDisk) return diskResize(stream, length);
      if (stream && stream.dwTree) throw new FS.ErrnoError({{{ cDefine('EINVAL') }}});
      return ftruncate.apply(this, arguments);
    };

    // Trap 2 (second half): ftruncate/truncate/fallocate take their 64-bit length from get64,
    // which returns only the low word.
    SYSCALLS.get64 = function(low, high) { return high * 4294967296 + (low >>> 0); };

    // Trap 6: stat times are rounded to whole seconds; mke2fs -d then stores wrong mtimes.
    SYSCALLS.doStat = function(func, path, buf) {
      var disk = diskFor(path);
      if (disk) return dwWriteStat(buf, diskStat(disk));
      var where = treeFor(path);
      if (where) {
        var found = treeLookup(where, func !== FS.lstat);
        return dwWriteStat(buf, treeStatOf(found.where, found.st));
      }
      var stat;
      try {
        stat = (func === FS.lstat ? nodeFs.lstatSync : nodeFs.statSync)(resolvePath(path), { bigint: true });
      } catch (e) {
        if (!e || !e.code) throw e;
        throw new FS.ErrnoError(ERRNO_CODES[e.code] || {{{ cDefine('EIO') }}});
      }
      return dwWriteStat(buf, stat);
    };

    // Traps 7, 8, 9: fds 0-2 are not the host's. Terminal-ness comes from the caller, stdin is a
    // given buffer, stdout/stderr go to a callback, and closing them never closes the host's fds.
    var tty = opts['tty'] || [false, false, false];
    var stdin = opts['stdin'] || new Uint8Array(0);
    var stdinPos = 0;
    var onOutput = opts['onOutput'] || function() {};
    var onOpen = opts['onOpen'] || function() {};
    var onClose = opts['onClose'] || function() {};
    var createStandardStreams = FS.createStandardStreams;
    FS.createStandardStreams = function() {
      createStandardStreams();
      for (var i = 0; i < 3; i++) {
        FS.streams[i].tty = !!tty[i];
        FS.streams[i].dwStd = true;
      }
    };
    // Host file I/O straight to fs.readSync/writeSync over one cached Buffer view of the heap
    // (the stock path wraps every call and allocates a Buffer per read: GC showed in profiles).
    var heapView = null;
    var heapBuffer = function(buffer) {
      if (heapView === null || heapView.buffer !== buffer.buffer) heapView = Buffer.from(buffer.buffer);
      return heapView;
    };
    var direct = function(stream) { return !stream.stream_ops && typeof stream.nfd === 'number'; };
    var read = FS.read;
    FS.read = function(stream, buffer, offset, length, position) {
      if (!stream.dwStd) {
        if (stream.dwDisk) return diskRead(stream, buffer, offset, length, position);
        if (stream.dwTree) return treeRead(stream, buffer, offset, length, position);
        if (!direct(stream)) return read(stream, buffer, offset, length, position);
        var seeking = typeof position === 'number';
        var at = seeking ? position : (stream.seekable ? stream.position : null);
        var n;
        try { n = nodeFs.readSync(stream.nfd, heapBuffer(buffer), buffer.byteOffset + offset, length, at); } catch (e) { throw hostError(e); }
        if (!seeking) stream.position += n;
        return n;
      }
      if (stream.fd !== 0) throw new FS.ErrnoError({{{ cDefine('EBADF') }}});
      var n = Math.min(length, stdin.length - stdinPos);
      buffer.set(stdin.subarray(stdinPos, stdinPos + n), offset);
      stdinPos += n;
      return n;
    };
    // Trap 13: there is no hole punching under NODERAWFS, so tools that zero ranges (mke2fs's
    // inode tables and journal, resize2fs's new groups) would allocate them. Writing zeros where
    // a regular file already reads as zeros changes nothing, so such writes are skipped (the file
    // is only extended when they reach past its end): images stay as sparse as host-made ones.
    // Never for a Disk: it decides itself what a write of zeros costs.
    var sparse = opts['sparse'] !== false;
    var ZERO_CHUNK = 65536;
    var zeros = Buffer.alloc(ZERO_CHUNK);
    var scratch = Buffer.alloc(ZERO_CHUNK);
    var isZero = function(bytes) {
      for (var at = 0; at < bytes.length; at += ZERO_CHUNK) {
        var end = Math.min(bytes.length, at + ZERO_CHUNK);
        if (!bytes.subarray(at, end).equals(zeros.subarray(0, end - at))) return false;
      }
      return true;
    };
    var fileReadsZero = function(nfd, position, length) {
      for (var at = 0; at < length; at += ZERO_CHUNK) {
        var n = Math.min(ZERO_CHUNK, length - at);
        var got = nodeFs.readSync(nfd, scratch, 0, n, position + at);
        if (!isZero(scratch.subarray(0, got))) return false;
        if (got < n) return true;
      }
      return true;
    };
    var skipZeroWrite = function(stream, buffer, offset, length, position) {
      if (!sparse || length < 4096 || stream.stream_ops || typeof stream.nfd !== 'number') return false;
      if (stream.dwRegular === undefined) stream.dwRegular = nodeFs.fstatSync(stream.nfd).isFile();
      if (!stream.dwRegular) return false;
      if (!isZero(Buffer.from(buffer.buffer, buffer.byteOffset + offset, length))) return false;
      var at = typeof position === 'number' ? position : stream.position;
      var size = nodeFs.fstatSync(stream.nfd).size;
      var inside = Math.max(0, Math.min(length, size - at));
      if (inside > 0 && !fileReadsZero(stream.nfd, at, inside)) return false;
      if (at + length > size) nodeFs.ftruncateSync(stream.nfd, at + length);
      if (typeof position !== 'number') stream.position += length;
      return true;
    };
    var write = FS.write;
    FS.write = function(stream, buffer, offset, length, position, canOwn) {
      if (!stream.dwStd) {
        if (stream.dwDisk) return diskWrite(stream, buffer, offset, length, position);
        if (stream.dwTree) throw new FS.ErrnoError({{{ cDefine('EBADF') }}});
        if (skipZeroWrite(stream, buffer, offset, length, position)) return length;
        if (!direct(stream) || (stream.flags & {{{ cDefine('O_APPEND') }}})) return write(stream, buffer, offset, length, position, canOwn);
        var seeking = typeof position === 'number';
        var at = seeking ? position : (stream.seekable ? stream.position : null);
        var n;
        try { n = nodeFs.writeSync(stream.nfd, heapBuffer(buffer), buffer.byteOffset + offset, length, at); } catch (e) { throw hostError(e); }
        if (!seeking) stream.position += n;
        return n;
      }
      if (stream.fd === 0) throw new FS.ErrnoError({{{ cDefine('EBADF') }}});
      onOutput(stream.fd, new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length).slice());
      return length;
    };
    var open = FS.open;
    FS.open = function() {
      var stream = open.apply(null, arguments);
      if (stream && typeof stream.nfd === 'number') onOpen(stream.nfd);
      return stream;
    };
    var close = FS.close;
    FS.close = function(stream) {
      // Standard streams, Disks and Trees: only the fd goes; the Disk's owner closes the Disk.
      if (stream.dwStd || stream.dwStat) { FS.closeStream(stream.fd); return; }
      var nfd = stream.nfd;
      close(stream);
      if (typeof nfd === 'number') onClose(nfd);
    };
    // Trap 10: a run that aborts leaves fds open; the runner calls this afterwards.
    Module['dwCloseAll'] = function() {
      for (var i = 0; i < FS.streams.length; i++) {
        var stream = FS.streams[i];
        if (!stream || stream.dwStd) continue;
        try { FS.close(stream); } catch (e) { /* already closed on the host */ }
      }
    };
  },
});

#!/usr/bin/env bash
# Rebuilds wasm/dist/ (e2fsprogs 1.47.0 tools as Node-loadable WebAssembly) from nothing.
# Needs: Debian's `emscripten` (3.1.6), dpkg-dev (dpkg-source), apt, gcc, make. No root: the
# Debian source package is fetched with a private apt configuration under wasm/src/.
# Usage: bash wasm/build.sh   (or npm run build:wasm). Takes ~6 min on 2 cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/src"          # downloaded source package (git-ignored)
build="$here/build"      # build tree (git-ignored)
dist="$here/dist"        # committed artifacts
version="$(sed -n 's/^version=//p' "$here/SOURCE")"
suite="$(sed -n 's/^suite=//p' "$here/SOURCE")"
mirror="$(sed -n 's/^mirror=//p' "$here/SOURCE")"
tools=(e2fsck resize2fs mke2fs tune2fs dumpe2fs debugfs e2undo)
jobs="${JOBS:-2}"

# Trap 1: Debian's emcc needs Node to find acorn & co in /usr/share/nodejs.
export NODE_PATH="/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}"

fetch_source() {
  mkdir -p "$src/apt/lists/partial" "$src/apt/cache/archives/partial"
  cat > "$src/apt/sources.list" <<LIST
deb-src $mirror $suite main
deb-src $mirror $suite-updates main
deb-src ${mirror/debian/debian-security} $suite-security main
LIST
  local apt_opts=(-o "Dir::Etc::SourceList=$src/apt/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
    -o "Dir::State::Lists=$src/apt/lists" -o "Dir::Cache=$src/apt/cache" -o "APT::Sandbox::User=root")
  if ! sha256_ok; then
    apt-get "${apt_opts[@]}" update
    (cd "$src" && apt-get "${apt_opts[@]}" source --download-only "e2fsprogs=$version")
  fi
  sha256_ok || { echo "build.sh: source hashes do not match wasm/SOURCE" >&2; exit 1; }
}

sha256_ok() {
  local name sum
  while read -r _ name sum; do
    [[ -f "$src/$name" ]] || return 1
    echo "$sum  $src/$name" | sha256sum --check --status || return 1
  done < <(grep '^sha256 ' "$here/SOURCE")
}

unpack() {
  rm -rf "$build"
  mkdir -p "$build"
  dpkg-source -x "$src/e2fsprogs_$version.dsc" "$build/e2fsprogs" >/dev/null
}

# debugfs_command LIB ANCHOR "NAME|HELP"...: one of diskwright's debugfs commands. wasm/lib/LIB
# is included at the end of debugfs/debugfs.c (as dw_….c) and each NAME is registered in
# debug_cmds.ct just before ANCHOR's request (idempotent, like every patch here).
debugfs_command() {
  local tree="$build/e2fsprogs" lib="$1" anchor="$2" file request text=''
  shift 2
  file="${lib#debugfs-}"
  file="${file//-/_}"
  cp "$here/lib/$lib" "$tree/debugfs/$file"
  grep -q "#include \"$file\"" "$tree/debugfs/debugfs.c" || printf '\n#include "%s" /* diskwright */\n' "$file" >> "$tree/debugfs/debugfs.c"
  for request in "$@"; do
    grep -q "^request do_${request%%|*}, " "$tree/debugfs/debug_cmds.ct" && continue
    text+="request do_${request%%|*}, \"${request#*|}\",\\"$'\n'"\\t${request%%|*};\\"$'\n'"\\"$'\n'
  done
  [[ -z "$text" ]] || sed -i "s/^request do_$anchor, /$text&/" "$tree/debugfs/debug_cmds.ct"
  for request in "$@"; do grep -q "^request do_${request%%|*}, " "$tree/debugfs/debug_cmds.ct"; done
}

# Source patches (idempotent; also applied by --relink so an existing tree picks them up).
patch_source() {
  local tree="$build/e2fsprogs"
  # Trap 4: a zeroed ext2_filsys has mmp_fd 0, so ext2fs_dup_handle dups stdin and resize2fs
  # aborts; mmp.c already treats 0 as unset, do the same here.
  sed -i 's/if (src->mmp_fd >= 0) {/if (src->mmp_fd > 0) {/' "$tree/lib/ext2fs/dupfs.c"
  grep -q 'src->mmp_fd > 0' "$tree/lib/ext2fs/dupfs.c"
  # resize2fs extends/truncates a regular-file device to the new filesystem size, ignoring
  # `?offset=`: on a disk image that cuts off everything after the partition (GPT backup
  # included). With io options (a filesystem inside a bigger file) treat it like a device.
  sed -i 's/if (!S_ISREG(st_buf.st_mode )) {/if (!S_ISREG(st_buf.st_mode ) || io_options) {/' "$tree/resize/main.c"
  grep -q 'S_ISREG(st_buf.st_mode ) || io_options' "$tree/resize/main.c"
  # MMP sleeps up to 2*interval+1 s; emscripten's sleep() busy-waits (a core for 11 s per
  # e2fsck on an MMP filesystem), and its gethostname() says "emscripten", which MMP records as
  # the node holding the filesystem. Both come from wasm/lib/diskwright-library.js instead.
  if ! grep -q dw_sleep "$tree/lib/ext2fs/mmp.c"; then
    sed -i '/^#include <fcntl.h>/a\
#ifdef __EMSCRIPTEN__\
extern unsigned int dw_sleep(unsigned int seconds);\
extern int dw_gethostname(char *name, size_t len);\
#define sleep dw_sleep\
#define gethostname dw_gethostname\
#endif' "$tree/lib/ext2fs/mmp.c"
  fi
  grep -q '#define sleep dw_sleep' "$tree/lib/ext2fs/mmp.c"
  # emscripten 3.1.6's time_t is 32-bit (wasm/README.md): keep e2fsck's clock 64-bit, so
  # E2FSCK_TIME past 2038 is not truncated (e2fsck then "repaired" pre-1970 timestamps,
  # f_pre_1970_date_encoding), and print times that do not fit 32 bits with musl's 64-bit
  # converter (UTC) instead of wrapping to 1901.
  sed -i 's/^\ttime_t now;$/\tlong long now; \/* diskwright: 64-bit with a 32-bit time_t *\//' "$tree/e2fsck/e2fsck.h"
  grep -q 'long long now; /\* diskwright' "$tree/e2fsck/e2fsck.h"
  sed -i 's/context->now = (time_t) strtoull(time_env, NULL, 0);/context->now = (long long) strtoull(time_env, NULL, 0);/' "$tree/e2fsck/e2fsck.c"
  grep -q 'context->now = (long long) strtoull' "$tree/e2fsck/e2fsck.c"
  sed -i 's/gmtime_r(&ctx->now, &tm_struct)/gmtime_r(\&(time_t){ ctx->now }, \&tm_struct)/; s/localtime_r(&ctx->now, &tm_struct)/localtime_r(\&(time_t){ ctx->now }, \&tm_struct)/' "$tree/e2fsck/logfile.c"
  grep -q 'gmtime_r(&(time_t){ ctx->now }' "$tree/e2fsck/logfile.c"
  if ! grep -q 'dw_asctime64' "$tree/e2fsck/message.c"; then
    sed -i 's/^static void print_time(FILE \*f, time_t t)$/static void print_time(FILE *f, long long t)/' "$tree/e2fsck/message.c"
    sed -i '/^\t\ttime_str = asctime((do_gmt > 0) ? gmtime(&t) : localtime(&t));$/i\
#ifdef __EMSCRIPTEN__\
\t\tif (t != (time_t) t) {\
\t\t\textern void dw_asctime64(double seconds, char *buf);\
\t\t\tchar buf64[32];\
\t\t\tdw_asctime64((double) t, buf64);\
\t\t\tfprintf(f, "%.24s", buf64);\
\t\t\treturn;\
\t\t}\
#endif' "$tree/e2fsck/message.c"
    sed -i 's/time_str = asctime((do_gmt > 0) ? gmtime(&t) : localtime(&t));/time_str = asctime((do_gmt > 0) ? gmtime(\&(time_t){ t }) : localtime(\&(time_t){ t }));/' "$tree/e2fsck/message.c"
  fi
  # pass1 repairs "old-encoded" pre-1970 times whenever sizeof(time_t) <= 4; decide on the clock.
  sed -i 's/if (((sizeof(time_t) <= 4) ||/if (((sizeof(ctx->now) <= 4) ||/; s/(((sizeof(time_t) > 4) \&\&/(((sizeof(ctx->now) > 4) \&\&/' "$tree/e2fsck/pass1.c"
  grep -q 'if (((sizeof(ctx->now) <= 4) ||' "$tree/e2fsck/pass1.c"
  grep -q '(((sizeof(ctx->now) > 4) &&' "$tree/e2fsck/pass1.c"
  sed -i 's/print_time(f, (time_t) ctx->num);/print_time(f, (long long) ctx->num);/' "$tree/e2fsck/message.c"
  grep -q 'print_time(f, (long long) ctx->num);' "$tree/e2fsck/message.c"
  grep -q 'static void print_time(FILE \*f, long long t)' "$tree/e2fsck/message.c"
  grep -q 'dw_asctime64((double) t, buf64);' "$tree/e2fsck/message.c"
  # e2fsck pass 1 steps over runs of all-zero unused inodes at once (lib/e2fsck-zero-inodes.c
  # gives the proof that nothing else changes); e2fsck only: the library is not touched.
  cp "$here/lib/e2fsck-zero-inodes.c" "$tree/e2fsck/dw_zero_inodes.c"
  if ! grep -q 'dw_zero_inodes.c' "$tree/e2fsck/pass1.c"; then
    sed -i 's/^void e2fsck_pass1(e2fsck_t ctx)$/#include "dw_zero_inodes.c" \/* diskwright *\/\n\n&/' "$tree/e2fsck/pass1.c"
    perl -0pi -e 's/(\t\t\t\t\tfailed_csum = 0;\n\t\t\t\t\}\n\t\t\t\}\n\t\t\tFINISH_INODE_LOOP\(ctx, ino, &pctx, failed_csum\);\n)(\t\t\tcontinue;\n)/$1\t\t\tino = dw_skip_zero_inodes(ctx, scan, ino, inode, inode_size); \/* diskwright *\/\n$2/' "$tree/e2fsck/pass1.c"
  fi
  grep -q '^#include "dw_zero_inodes.c"' "$tree/e2fsck/pass1.c"
  [[ "$(grep -c 'ino = dw_skip_zero_inodes(ctx, scan, ino, inode, inode_size);' "$tree/e2fsck/pass1.c")" == 1 ]]
  # pass1.c includes dw_zero_inodes.c: make it rebuild when that changes.
  touch "$tree/e2fsck/pass1.c"
  # e2fsck passes 4 and 5 take runs of unused inodes / whole agreeing groups from the bitmaps
  # (lib/e2fsck-bitmap-runs.c says why nothing else changes).
  cp "$here/lib/e2fsck-bitmap-runs.c" "$tree/e2fsck/dw_bitmap_runs.c"
  if ! grep -q 'dw_bitmap_runs.c' "$tree/e2fsck/pass4.c"; then
    sed -i 's/^void e2fsck_pass4(e2fsck_t ctx)$/#define DW_PASS4\n#include "dw_bitmap_runs.c" \/* diskwright *\/\n\n&/' "$tree/e2fsck/pass4.c"
    perl -0pi -e 's/(\t\t    \(ctx->inode_bb_map &&\n\t\t     ext2fs_test_inode_bitmap2\(ctx->inode_bb_map, i\)\)\)\n)(\t\t\tcontinue;\n)/$1\t\t\t{ i = dw_pass4_skip_unused(ctx, i); \/* diskwright *\/\n\t$2\t\t\t}\n/' "$tree/e2fsck/pass4.c"
  fi
  [[ "$(grep -c 'i = dw_pass4_skip_unused(ctx, i);' "$tree/e2fsck/pass4.c")" == 1 ]]
  if ! grep -q 'dw_bitmap_runs.c' "$tree/e2fsck/pass5.c"; then
    sed -i 's/^static void check_inode_bitmaps(e2fsck_t ctx)$/#define DW_PASS5\n#include "dw_bitmap_runs.c" \/* diskwright *\/\n\n&/' "$tree/e2fsck/pass5.c"
    perl -0pi -e 's/(\n)(\t\tactual = ext2fs_fast_test_inode_bitmap2\(ctx->inode_used_map, i\);\n)/$1\t\tif (i % fs->super->s_inodes_per_group == 1 \&\& !skip_group \&\&\n\t\t    dw_inode_group_matches(ctx, i, redo_flag, \&dw_used, \&dw_dirs, \&bitmap)) { \/* diskwright *\/\n\t\t\tinodes = fs->super->s_inodes_per_group;\n\t\t\tgroup_free += inodes - dw_used;\n\t\t\tfree_inodes += inodes - dw_used;\n\t\t\tdirs_count += dw_dirs;\n\t\t\ti += inodes - 1;\n\t\t\tgoto dw_group_end;\n\t\t}\n$2/' "$tree/e2fsck/pass5.c"
    perl -0pi -e 's/(\n)(\t\tif \(\(inodes == fs->super->s_inodes_per_group\) \|\|\n)/$1dw_group_end: \/* diskwright *\/\n$2/' "$tree/e2fsck/pass5.c"
    perl -0pi -e 's/(\tint\t\tskip_group = 0;\n\tint\t\tredo_flag = 0;\n)/$1\tunsigned int\tdw_used, dw_dirs; \/* diskwright *\/\n/' "$tree/e2fsck/pass5.c"
  fi
  [[ "$(grep -c 'dw_inode_group_matches(ctx, i, redo_flag' "$tree/e2fsck/pass5.c")" == 1 ]]
  [[ "$(grep -c '^dw_group_end:' "$tree/e2fsck/pass5.c")" == 1 ]]
  grep -q 'unsigned int	dw_used, dw_dirs;' "$tree/e2fsck/pass5.c"
  touch "$tree/e2fsck/pass4.c" "$tree/e2fsck/pass5.c"
  # debugfs `dw_alloc FILE BLOCKS`: allocate a large file's blocks without writing them
  # (lib/debugfs-dw-alloc.c says why); diskwright writes the data itself in large writes.
  debugfs_command debugfs-dw-alloc.c fallocate "dw_alloc|Allocate a file's blocks without writing them (diskwright)"
  # debugfs `dw_open_check`: refuse what e2fsprogs 1.47 would not open (lib/debugfs-dw-open-check.c
  # says why); a write session's batch starts with it instead of a separate dumpe2fs run.
  debugfs_command debugfs-dw-open-check.c dw_alloc "dw_open_check|Refuse what e2fsprogs 1.47 would not open (diskwright)"
  # debugfs `dw_bitmaps_snapshot` / `dw_bitmaps_flush`: write only the bitmap blocks a batch
  # changed (lib/debugfs-dw-bitmaps.c says why).
  debugfs_command debugfs-dw-bitmaps.c dw_alloc "dw_bitmaps_snapshot|Remember the bitmaps as read (diskwright)" \
    "dw_bitmaps_flush|Write the bitmap blocks changed since the snapshot (diskwright)"
  # debugfs.c includes dw_alloc.c, dw_open_check.c and dw_bitmaps.c: make it rebuild when they change.
  touch "$tree/debugfs/debugfs.c"
}

configure() {
  cd "$build/e2fsprogs"
  emconfigure ./configure --host=wasm32-unknown-emscripten BUILD_CC=gcc CFLAGS="-O2" \
    ac_cv_func_dlopen=no ac_cv_lib_dl_dlopen=no ac_cv_func_fallocate=yes ac_cv_func_llistxattr=yes \
    --disable-nls --disable-fuse2fs --disable-uuidd --disable-tdb --disable-backtrace \
    --disable-imager --disable-defrag --without-pthread \
    --enable-libuuid --enable-libblkid >"$build/configure.log" 2>&1 \
    || { tail -40 "$build/configure.log"; exit 1; }
}

compile() {
  cd "$build/e2fsprogs"
  # A response file keeps `$` and brackets away from make and the shell.
  cat > "$build/link.rsp" <<RSP
-O2 -sNODERAWFS=1 -sENVIRONMENT=node -sWASM_ASYNC_COMPILATION=0 -sALLOW_MEMORY_GROWTH=1
-sMAXIMUM_MEMORY=4GB -sEXIT_RUNTIME=1 -sMODULARIZE=1 -sNODEJS_CATCH_EXIT=0
-sNODEJS_CATCH_REJECTION=0 -sDEFAULT_LIBRARY_FUNCS_TO_INCLUDE=['\$dwPatchRuntime']
--js-library $here/lib/diskwright-library.js --pre-js $here/lib/pre.js
RSP
  emmake make -j"$jobs" libs >"$build/make-libs.log" 2>&1 || { tail -40 "$build/make-libs.log"; exit 1; }
  local tool dir
  for tool in "${tools[@]}"; do
    case "$tool" in
      e2fsck) dir=e2fsck ;; resize2fs) dir=resize ;; debugfs) dir=debugfs ;; *) dir=misc ;;
    esac
    rm -f "$dir/$tool" "$dir/$tool.wasm"
    emmake make -j"$jobs" -C "$dir" "$tool" LDFLAGS="@$build/link.rsp" >"$build/make-$tool.log" 2>&1 \
      || { tail -40 "$build/make-$tool.log"; exit 1; }
  done
}

install_dist() {
  cd "$build/e2fsprogs"
  rm -rf "$dist" && mkdir -p "$dist"
  local tool dir
  for tool in "${tools[@]}"; do
    case "$tool" in
      e2fsck) dir=e2fsck ;; resize2fs) dir=resize ;; debugfs) dir=debugfs ;; *) dir=misc ;;
    esac
    cp "$dir/$tool" "$dist/$tool.cjs"
    cp "$dir/$tool.wasm" "$dist/$tool.wasm"
  done
  # Defaults that make results independent of the host's /etc (trap 11).
  cp misc/mke2fs.conf.in "$dist/mke2fs.conf"
  : > "$dist/e2fsck.conf"
  { echo "e2fsprogs $version built by wasm/build.sh with $(emcc --version | head -1)"
    (cd "$dist" && sha256sum ./*.wasm ./*.cjs ./*.conf); } > "$dist/BUILDINFO"
  echo "wasm/dist:"; ls -l "$dist"
}

# `--relink` reuses an existing build tree (after editing wasm/lib/*.js).
if [[ "${1:-}" != "--relink" ]]; then
  fetch_source
  unpack
  patch_source
  configure
else
  patch_source
fi
compile
install_dist

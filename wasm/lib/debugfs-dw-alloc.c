/*
 * diskwright's `dw_alloc FILE BLOCKS` debugfs command (included at the end of debugfs/debugfs.c by
 * wasm/build.sh; registered in debug_cmds.ct). It gives an empty regular file BLOCKS initialized
 * data blocks WITHOUT writing them, and prints where they are as `dw_extent LOGICAL PHYSICAL
 * LENGTH` lines. The caller (src/ext/with-filesystem.ts) writes every one of those blocks before
 * it commits the metadata, so stale bytes are never exposed.
 *
 * Why: debugfs `fallocate` on a block-mapped (ext2/ext3) file allocates block by block through
 * ext2fs_bmap2, zeroing each data block and rewriting the indirect block and the inode per block
 * (~100k disk calls for 100 MiB under WebAssembly); `write` copies the data block by block. Here
 * the blocks are taken from the bitmap in order from the inode's goal (indirect blocks just before
 * the blocks they map, as ext2 lays them out), each indirect block is built in memory and written
 * once, and the inode once. Extent files use ext2fs_fallocate with FORCE_INIT (initialized
 * extents, no zeroing).
 */

struct dw_alloc_state {
	blk64_t goal;
	errcode_t err;
	blk64_t allocated;
};

/* One block from the bitmap at or after the goal (block maps address 32-bit block numbers only). */
static blk_t dw_alloc_block(ext2_filsys fs, struct dw_alloc_state *st)
{
	blk64_t b;

	if (st->err)
		return 0;
	st->err = ext2fs_new_block3(fs, st->goal, 0, &b, NULL);
	if (st->err)
		return 0;
	if (b > 0xFFFFFFFFULL) {
		st->err = EXT2_ET_BLOCK_ALLOC_FAIL;
		return 0;
	}
	ext2fs_block_alloc_stats2(fs, b, +1);
	st->goal = b + 1;
	st->allocated++;
	return (blk_t) b;
}

/* A mapping block of `depth` (1 = indirect) and what it maps, for up to *left data blocks. */
static blk_t dw_alloc_level(ext2_filsys fs, struct dw_alloc_state *st, int depth, blk64_t *left)
{
	blk_t per_block = fs->blocksize >> 2, self, i;
	blk_t *map;

	self = dw_alloc_block(fs, st);
	if (!self)
		return 0;
	st->err = ext2fs_get_memzero(fs->blocksize, &map);
	if (st->err)
		return 0;
	for (i = 0; i < per_block && *left > 0 && !st->err; i++) {
		if (depth == 1) {
			map[i] = ext2fs_cpu_to_le32(dw_alloc_block(fs, st));
			(*left)--;
		} else {
			map[i] = ext2fs_cpu_to_le32(dw_alloc_level(fs, st, depth - 1, left));
		}
	}
	if (!st->err)
		st->err = io_channel_write_blk64(fs->io, self, 1, map);
	ext2fs_free_mem(&map);
	return st->err ? 0 : self;
}

static errcode_t dw_alloc_blockmap(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode *inode, blk64_t count)
{
	struct dw_alloc_state st = { 0, 0, 0 };
	blk64_t per_block = fs->blocksize >> 2, left = count;
	int i, depth;

	if (count > EXT2_NDIR_BLOCKS + per_block + per_block * per_block + per_block * per_block * per_block)
		return EXT2_ET_FILE_TOO_BIG;
	st.goal = ext2fs_find_inode_goal(fs, ino, inode, 0);
	for (i = 0; i < EXT2_NDIR_BLOCKS && left > 0 && !st.err; i++, left--)
		inode->i_block[i] = dw_alloc_block(fs, &st);
	for (depth = 1; depth <= 3 && left > 0 && !st.err; depth++)
		inode->i_block[EXT2_IND_BLOCK + depth - 1] = dw_alloc_level(fs, &st, depth, &left);
	if (st.err)
		return st.err;
	return ext2fs_iblk_add_blocks(fs, inode, st.allocated);
}

struct dw_extent_print {
	e2_blkcnt_t logical;
	blk64_t physical;
	blk64_t length;
};

static void dw_extent_flush(struct dw_extent_print *p)
{
	if (p->length)
		printf("dw_extent %lld %llu %llu\n", (long long) p->logical,
		       (unsigned long long) p->physical, (unsigned long long) p->length);
	p->length = 0;
}

static int dw_extent_block(ext2_filsys fs EXT2FS_ATTR((unused)), blk64_t *blocknr,
			   e2_blkcnt_t blockcnt, blk64_t ref_blk EXT2FS_ATTR((unused)),
			   int ref_offset EXT2FS_ATTR((unused)), void *priv)
{
	struct dw_extent_print *p = priv;

	if (blockcnt < 0)
		return 0;
	if (p->length && blockcnt == p->logical + (e2_blkcnt_t) p->length &&
	    *blocknr == p->physical + p->length) {
		p->length++;
		return 0;
	}
	dw_extent_flush(p);
	p->logical = blockcnt;
	p->physical = *blocknr;
	p->length = 1;
	return 0;
}

void do_dw_alloc(int argc, char *argv[], int sci_idx EXT2FS_ATTR((unused)),
		 void *infop EXT2FS_ATTR((unused)))
{
	ext2_ino_t ino;
	struct ext2_inode inode;
	unsigned long long count;
	struct dw_extent_print p = { 0, 0, 0 };
	errcode_t err;
	char *end;

	if (common_args_process(argc, argv, 3, 3, argv[0], "<file> <blocks>",
				CHECK_FS_RW | CHECK_FS_BITMAPS))
		return;
	ino = string_to_inode(argv[1]);
	if (!ino)
		return;
	errno = 0;
	count = strtoull(argv[2], &end, 0);
	if (errno || *end || count == 0 || count > ext2fs_blocks_count(current_fs->super)) {
		com_err(argv[0], 0, "Bad block count - %s", argv[2]);
		return;
	}
	if (debugfs_read_inode(ino, &inode, argv[1]))
		return;
	if (!LINUX_S_ISREG(inode.i_mode) || (inode.i_flags & EXT4_INLINE_DATA_FL) ||
	    ext2fs_inode_data_blocks2(current_fs, &inode) != 0) {
		com_err(argv[0], 0, "%s is not an empty regular file", argv[1]);
		return;
	}
	if (inode.i_flags & EXT4_EXTENTS_FL) {
		err = ext2fs_fallocate(current_fs, EXT2_FALLOCATE_FORCE_INIT, ino, NULL, ~0ULL, 0, count);
	} else {
		err = dw_alloc_blockmap(current_fs, ino, &inode, count);
		if (!err)
			err = ext2fs_write_inode(current_fs, ino, &inode);
	}
	if (err) {
		com_err(argv[0], err, "while allocating %llu blocks to %s", count, argv[1]);
		return;
	}
	err = ext2fs_block_iterate3(current_fs, ino, BLOCK_FLAG_DATA_ONLY | BLOCK_FLAG_READ_ONLY,
				    NULL, dw_extent_block, &p);
	if (err) {
		com_err(argv[0], err, "while listing the blocks of %s", argv[1]);
		return;
	}
	dw_extent_flush(&p);
}

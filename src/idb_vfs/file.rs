//! The in-memory image of one persisted database file: 4096-byte blocks, the dirty set, the
//! before-images that allow undoing everything since the last durable state, and the
//! in-process lock table shared by all SQLite handles on the file.
//!
//! Pure Rust, no JS: every SQLite callback lands here and returns without touching IndexedDB.
//!
//! # Epochs
//! Writes are tracked per *epoch*. An epoch starts at a base state (`base_size` plus the block
//! contents at that moment). The first change to a block that existed at the base saves its
//! before-image; every changed block is marked dirty. [`BlockFile::begin_flush`] closes the epoch:
//! its before-images move into the in-flight record and a new epoch starts whose base is the state
//! being written. On success the in-flight record is dropped (its state is now durable); on failure
//! both layers are undone, newest first, which brings memory back to the durable state.

use std::collections::{BTreeSet, HashMap};

use sqlite_wasm_rs::vfs::{LockLevel, VfsError, VfsErrorCode, VfsResult};

/// Size of one persisted block in bytes (IndexedDB record granularity).
pub(crate) const BLOCK_SIZE: usize = 4096;

/// Number of blocks needed to hold `size` bytes.
pub(crate) fn blocks_for(size: u64) -> usize {
    // Sizes are bounded by wasm memory (checked on write), so this fits in usize.
    size.div_ceil(BLOCK_SIZE as u64) as usize
}

fn zero_block() -> Box<[u8]> {
    vec![0u8; BLOCK_SIZE].into_boxed_slice()
}

/// Before-images of one epoch, keyed by block index, plus the size the epoch started from.
#[derive(Default)]
struct Layer {
    base_size: u64,
    before: HashMap<usize, Box<[u8]>>,
}

impl Layer {
    /// Puts back the blocks saved in this layer and shrinks/grows to the layer's base size.
    fn undo(self, blocks: &mut Vec<Box<[u8]>>) -> u64 {
        let count = blocks_for(self.base_size);
        blocks.truncate(count);
        while blocks.len() < count {
            // Every base block that was dropped has a before-image, so these get overwritten.
            blocks.push(zero_block());
        }
        for (index, image) in self.before {
            if let Some(block) = blocks.get_mut(index) {
                *block = image;
            }
        }
        self.base_size
    }
}

/// The write a flush sends to IndexedDB, captured synchronously.
pub(crate) struct FlushPlan {
    /// Dirty blocks in index order, each a private copy.
    pub blocks: Vec<(usize, Box<[u8]>)>,
    /// New logical file size.
    pub size: u64,
    /// Blocks at and past this index must be deleted (the file shrank), if any.
    pub delete_from: Option<usize>,
    /// Generation the stored meta record must still have (optimistic concurrency check).
    pub expected_generation: u64,
    /// Generation written by this flush.
    pub new_generation: u64,
}

/// State of a flush whose IndexedDB transaction has not finished yet.
struct InFlight {
    undo: Layer,
    new_size: u64,
    new_generation: u64,
}

/// Lock table of one file, shared by every SQLite handle on it (same worker).
#[derive(Default)]
struct Locks {
    shared: u32,
    reserved: bool,
    pending: bool,
    exclusive: bool,
}

/// In-memory image of a persisted main database file.
pub(crate) struct BlockFile {
    blocks: Vec<Box<[u8]>>,
    size: u64,
    /// Size last committed to IndexedDB.
    durable_size: u64,
    /// Generation counter of the meta record last committed to IndexedDB.
    durable_generation: u64,
    dirty: BTreeSet<usize>,
    epoch: Layer,
    in_flight: Option<InFlight>,
    locks: Locks,
}

impl BlockFile {
    /// A file holding `blocks` (each exactly [`BLOCK_SIZE`] bytes) of which `size` bytes are
    /// valid, as loaded from IndexedDB at `generation`.
    pub(crate) fn from_durable(mut blocks: Vec<Box<[u8]>>, size: u64, generation: u64) -> Self {
        // Keep the invariant that bytes past EOF in the last block are zero.
        let tail = (size % BLOCK_SIZE as u64) as usize;
        if tail != 0 {
            if let Some(last) = blocks.last_mut() {
                last[tail..].fill(0);
            }
        }
        BlockFile {
            blocks,
            size,
            durable_size: size,
            durable_generation: generation,
            dirty: BTreeSet::new(),
            epoch: Layer {
                base_size: size,
                before: HashMap::new(),
            },
            in_flight: None,
            locks: Locks::default(),
        }
    }

    /// An empty file that was never stored.
    #[allow(dead_code)] // used by tests/idb_vfs.rs
    pub(crate) fn empty() -> Self {
        Self::from_durable(Vec::new(), 0, 0)
    }

    /// Logical size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Whether anything changed since the last flush was started.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.dirty.is_empty() || self.size != self.epoch.base_size
    }

    /// Whether a flush is waiting for its IndexedDB transaction.
    pub(crate) fn flush_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether some connection holds a RESERVED or stronger lock (a write transaction, or
    /// `locking_mode=EXCLUSIVE` after a write).
    pub(crate) fn write_locked(&self) -> bool {
        self.locks.reserved || self.locks.pending || self.locks.exclusive
    }

    /// Saves the before-image of `index` if it belongs to the epoch base and was not saved yet,
    /// and marks it dirty.
    fn touch(&mut self, index: usize) {
        if index < blocks_for(self.epoch.base_size) && !self.epoch.before.contains_key(&index) {
            if let Some(block) = self.blocks.get(index) {
                self.epoch.before.insert(index, block.clone());
            }
        }
        self.dirty.insert(index);
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns the count (short at EOF).
    pub(crate) fn read(&self, buf: &mut [u8], offset: u64) -> usize {
        if buf.is_empty() || offset >= self.size {
            return 0;
        }
        let available = (self.size - offset).min(buf.len() as u64) as usize;
        let mut done = 0;
        let mut position = offset as usize;
        while done < available {
            let index = position / BLOCK_SIZE;
            let within = position % BLOCK_SIZE;
            let n = (BLOCK_SIZE - within).min(available - done);
            match self.blocks.get(index) {
                Some(block) => buf[done..done + n].copy_from_slice(&block[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
            position += n;
        }
        available
    }

    /// Writes all of `data` at `offset`, growing the file (zero-filled) as needed.
    pub(crate) fn write(&mut self, data: &[u8], offset: u64) -> VfsResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        let start = usize::try_from(offset).map_err(|_| too_large())?;
        let end = start.checked_add(data.len()).ok_or_else(too_large)?;
        let needed = end.div_ceil(BLOCK_SIZE);
        if needed > self.blocks.len() {
            self.blocks
                .try_reserve(needed - self.blocks.len())
                .map_err(|_| no_memory())?;
            while self.blocks.len() < needed {
                let index = self.blocks.len();
                self.blocks.push(zero_block());
                self.dirty.insert(index);
            }
        }
        let mut done = 0;
        let mut position = start;
        while done < data.len() {
            let index = position / BLOCK_SIZE;
            let within = position % BLOCK_SIZE;
            let n = (BLOCK_SIZE - within).min(data.len() - done);
            self.touch(index);
            if let Some(block) = self.blocks.get_mut(index) {
                block[within..within + n].copy_from_slice(&data[done..done + n]);
            }
            done += n;
            position += n;
        }
        self.size = self.size.max(end as u64);
        Ok(())
    }

    /// Sets the logical size; shrinking drops whole blocks and zeroes the tail of the last one.
    pub(crate) fn truncate(&mut self, size: u64) -> VfsResult<()> {
        if size > self.size {
            // Growing: SQLite does not do this, but a zero-filled extension is well defined.
            let end = usize::try_from(size).map_err(|_| too_large())?;
            let gap = end - self.size as usize;
            return self.write(&vec![0u8; gap], self.size);
        }
        let count = blocks_for(size);
        for index in count..self.blocks.len() {
            self.touch(index);
            self.dirty.remove(&index);
        }
        self.blocks.truncate(count);
        let tail = (size % BLOCK_SIZE as u64) as usize;
        if tail != 0 && size < self.size {
            let index = count - 1;
            self.touch(index);
            if let Some(block) = self.blocks.get_mut(index) {
                block[tail..].fill(0);
            }
        }
        self.size = size;
        Ok(())
    }

    /// Captures the dirty blocks and closes the current epoch. Fails if a flush is in flight.
    pub(crate) fn begin_flush(&mut self) -> Result<FlushPlan, &'static str> {
        if self.in_flight.is_some() {
            return Err("a flush of this database is still in flight; await it first");
        }
        let mut blocks = Vec::with_capacity(self.dirty.len());
        for &index in &self.dirty {
            if let Some(block) = self.blocks.get(index) {
                blocks.push((index, block.clone()));
            }
        }
        let new_count = blocks_for(self.size);
        let plan = FlushPlan {
            blocks,
            size: self.size,
            delete_from: (new_count < blocks_for(self.durable_size)).then_some(new_count),
            expected_generation: self.durable_generation,
            new_generation: self.durable_generation + 1,
        };
        let undo = std::mem::replace(
            &mut self.epoch,
            Layer {
                base_size: self.size,
                before: HashMap::new(),
            },
        );
        self.dirty.clear();
        self.in_flight = Some(InFlight {
            undo,
            new_size: self.size,
            new_generation: plan.new_generation,
        });
        Ok(plan)
    }

    /// The flush's transaction committed: its state is the durable state now.
    pub(crate) fn finish_flush(&mut self) {
        if let Some(flight) = self.in_flight.take() {
            self.durable_size = flight.new_size;
            self.durable_generation = flight.new_generation;
        }
    }

    /// The flush's transaction failed: undo every change since the durable state (writes made
    /// while the flush was in flight included), so memory equals what IndexedDB holds.
    pub(crate) fn fail_flush(&mut self) {
        let epoch = std::mem::take(&mut self.epoch);
        self.size = epoch.undo(&mut self.blocks);
        if let Some(flight) = self.in_flight.take() {
            self.size = flight.undo.undo(&mut self.blocks);
        }
        self.dirty.clear();
        self.epoch = Layer {
            base_size: self.size,
            before: HashMap::new(),
        };
    }

    /// Upgrades the lock of a handle currently at `*held` to `level` (SQLite's lock protocol,
    /// between the handles of this worker).
    pub(crate) fn lock(&mut self, held: &mut LockLevel, level: LockLevel) -> VfsResult<()> {
        if *held >= level {
            return Ok(());
        }
        let locks = &mut self.locks;
        match level {
            LockLevel::None => {}
            LockLevel::Shared => {
                if locks.pending || locks.exclusive {
                    return Err(busy());
                }
                locks.shared += 1;
                *held = LockLevel::Shared;
            }
            LockLevel::Reserved => {
                if locks.reserved {
                    return Err(busy());
                }
                locks.reserved = true;
                *held = LockLevel::Reserved;
            }
            LockLevel::Pending | LockLevel::Exclusive => {
                if *held < LockLevel::Pending {
                    if locks.pending || locks.exclusive {
                        return Err(busy());
                    }
                    locks.pending = true;
                    *held = LockLevel::Pending;
                }
                if level == LockLevel::Exclusive {
                    if locks.shared > 1 {
                        // Readers remain: keep PENDING so no new reader starts, report busy.
                        return Err(busy());
                    }
                    locks.exclusive = true;
                    *held = LockLevel::Exclusive;
                }
            }
        }
        Ok(())
    }

    /// Downgrades the lock of a handle currently at `*held` to `level` (SHARED or NONE).
    pub(crate) fn unlock(&mut self, held: &mut LockLevel, level: LockLevel) {
        if *held <= level {
            return;
        }
        let locks = &mut self.locks;
        if *held >= LockLevel::Pending {
            locks.pending = false;
            locks.exclusive = false;
        }
        if *held >= LockLevel::Reserved {
            locks.reserved = false;
        }
        if level == LockLevel::None && *held >= LockLevel::Shared {
            locks.shared = locks.shared.saturating_sub(1);
        }
        *held = level;
    }
}

fn busy() -> VfsError {
    VfsError::new(
        VfsErrorCode::Busy,
        "database is locked by another connection".into(),
    )
}

fn too_large() -> VfsError {
    VfsError::new(
        VfsErrorCode::Full,
        "file size exceeds the address space".into(),
    )
}

fn no_memory() -> VfsError {
    VfsError::new(VfsErrorCode::NoMemory, "out of memory for file data".into())
}

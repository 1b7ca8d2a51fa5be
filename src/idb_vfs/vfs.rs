//! The SQLite side: the `synqlite-idb` VFS registered through `rsqlite-vfs`.
//!
//! Main database files are the [`BlockFile`]s that [`super::IdbStore::open`] loaded; everything
//! else SQLite opens (rollback journals, statement journals, temp files) is a plain memory file
//! that is never persisted. All callbacks are synchronous and never call into JS.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use sqlite_wasm_rs::vfs::{
    register_vfs, registered_vfs, AccessMode, DeviceCharacteristics, FileKind, LockLevel,
    MemChunksFile, OpenAccess, OpenOptions, OpenRequest, OpenedFile, SQLiteIoMethods, SQLiteVfs,
    SyncOptions, VfsError, VfsErrorCode, VfsFile, VfsResult, VfsStore,
};
use sqlite_wasm_rs::WasmOsCallback;
use synqlite_core::Error;

use super::file::BlockFile;

/// Longest file name SQLite may hand us (it appends suffixes such as `-journal`).
const MAX_PATH: i32 = 1024;

/// Shared state of the VFS in this worker (its `pAppData`).
#[derive(Default)]
pub(crate) struct VfsState {
    os: WasmOsCallback,
    /// Persisted main database files, keyed by the file name given to SQLite.
    databases: RefCell<HashMap<String, Rc<RefCell<BlockFile>>>>,
    /// Memory-only named files (journals, temp files).
    aux: RefCell<HashMap<String, Rc<RefCell<MemChunksFile>>>>,
    last_error: RefCell<Option<VfsError>>,
}

thread_local! {
    static STATE: Rc<VfsState> = Rc::default();
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// The VFS state of this worker, registering the VFS with SQLite on first use.
pub(crate) fn state() -> Result<Rc<VfsState>, Error> {
    let state = STATE.with(Rc::clone);
    if REGISTERED.with(Cell::get) {
        return Ok(state);
    }
    let name = super::IdbStore::VFS_NAME;
    // SAFETY: single-threaded worker; nothing else registers this name in between (no await).
    let existing = unsafe { registered_vfs(name) }
        .map_err(|e| Error::Internal(format!("looking up the {name} VFS: {e}")))?;
    if existing.is_some() {
        return Err(Error::Internal(format!(
            "another VFS named {name} is already registered in this worker"
        )));
    }
    // SAFETY: `IdbIoMethods`/`IdbVfs` use the default file layout with `VfsState` app data; the
    // registration is kept for the life of the worker (into_raw), so open files never outlive it.
    let registration =
        unsafe { register_vfs::<IdbIoMethods, IdbVfs>(name, Rc::clone(&state), false) }
            .map_err(|e| Error::Internal(format!("registering the {name} VFS: {e}")))?;
    let _ = registration.into_raw();
    REGISTERED.with(|r| r.set(true));
    Ok(state)
}

impl VfsState {
    /// Makes `file` the main database file `file_name`. Fails if the name is taken.
    pub(crate) fn attach(&self, file_name: &str, file: Rc<RefCell<BlockFile>>) -> bool {
        let Ok(mut databases) = self.databases.try_borrow_mut() else {
            return false;
        };
        if databases.contains_key(file_name) {
            return false;
        }
        databases.insert(file_name.to_owned(), file);
        true
    }

    /// Whether a main database file named `file_name` is attached.
    pub(crate) fn is_attached(&self, file_name: &str) -> bool {
        self.databases
            .try_borrow()
            .map(|d| d.contains_key(file_name))
            .unwrap_or(true)
    }

    /// Forgets `file` (if it is still the one attached as `file_name`) and the memory files
    /// SQLite left next to it (`<file_name>-journal` etc.).
    pub(crate) fn detach(&self, file_name: &str, file: &Rc<RefCell<BlockFile>>) {
        if let Ok(mut databases) = self.databases.try_borrow_mut() {
            if databases
                .get(file_name)
                .is_some_and(|f| Rc::ptr_eq(f, file))
            {
                databases.remove(file_name);
            }
        }
        if let Ok(mut aux) = self.aux.try_borrow_mut() {
            let prefix = format!("{file_name}-");
            aux.retain(|name, _| !name.starts_with(&prefix));
        }
    }
}

/// A handle SQLite holds between `xOpen` and `xClose`.
pub(crate) enum IdbHandle {
    /// The persisted main database file.
    Main {
        file: Rc<RefCell<BlockFile>>,
        lock: LockLevel,
        read_only: bool,
    },
    /// A memory-only file (journal, temp file).
    Aux {
        file: Rc<RefCell<MemChunksFile>>,
        read_only: bool,
    },
}

impl IdbHandle {
    /// A handle on `file` (used by tests to exercise the file through the VFS trait).
    #[allow(dead_code)] // used by tests/idb_vfs.rs
    pub(crate) fn main(file: Rc<RefCell<BlockFile>>) -> Self {
        IdbHandle::Main {
            file,
            lock: LockLevel::None,
            read_only: false,
        }
    }

    fn writable(&self) -> VfsResult<()> {
        let read_only = match self {
            IdbHandle::Main { read_only, .. } | IdbHandle::Aux { read_only, .. } => *read_only,
        };
        if read_only {
            Err(VfsError::new(
                VfsErrorCode::ReadOnly,
                "file is read-only".into(),
            ))
        } else {
            Ok(())
        }
    }
}

fn busy_borrow() -> VfsError {
    VfsError::new(
        VfsErrorCode::Io,
        "file is in use by a re-entrant call".into(),
    )
}

impl VfsFile for IdbHandle {
    fn device_characteristics(&self) -> DeviceCharacteristics {
        match self {
            // Memory writes never tear and land in order; durability comes from flush().
            IdbHandle::Main { .. } => {
                DeviceCharacteristics::POWERSAFE_OVERWRITE
                    | DeviceCharacteristics::SAFE_APPEND
                    | DeviceCharacteristics::SEQUENTIAL
                    | DeviceCharacteristics::UNDELETABLE_WHEN_OPEN
            }
            IdbHandle::Aux { .. } => DeviceCharacteristics::NONE,
        }
    }

    fn read(&mut self, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        match self {
            IdbHandle::Main { file, .. } => Ok(file
                .try_borrow()
                .map_err(|_| busy_borrow())?
                .read(buf, offset)),
            IdbHandle::Aux { file, .. } => file
                .try_borrow_mut()
                .map_err(|_| busy_borrow())?
                .read(buf, offset),
        }
    }

    fn write(&mut self, buf: &[u8], offset: u64) -> VfsResult<()> {
        self.writable()?;
        match self {
            IdbHandle::Main { file, .. } => file
                .try_borrow_mut()
                .map_err(|_| busy_borrow())?
                .write(buf, offset),
            IdbHandle::Aux { file, .. } => file
                .try_borrow_mut()
                .map_err(|_| busy_borrow())?
                .write(buf, offset),
        }
    }

    fn truncate(&mut self, size: u64) -> VfsResult<()> {
        self.writable()?;
        match self {
            IdbHandle::Main { file, .. } => file
                .try_borrow_mut()
                .map_err(|_| busy_borrow())?
                .truncate(size),
            IdbHandle::Aux { file, .. } => file
                .try_borrow_mut()
                .map_err(|_| busy_borrow())?
                .truncate(size),
        }
    }

    fn sync(&mut self, _options: SyncOptions) -> VfsResult<()> {
        // Durability is IdbStore::flush's job, after the transaction committed.
        Ok(())
    }

    fn size(&self) -> VfsResult<u64> {
        match self {
            IdbHandle::Main { file, .. } => {
                Ok(file.try_borrow().map_err(|_| busy_borrow())?.size())
            }
            IdbHandle::Aux { file, .. } => file.try_borrow().map_err(|_| busy_borrow())?.size(),
        }
    }

    fn lock(&mut self, level: LockLevel) -> VfsResult<()> {
        match self {
            IdbHandle::Main { file, lock, .. } => file
                .try_borrow_mut()
                .map_err(|_| busy_borrow())?
                .lock(lock, level),
            IdbHandle::Aux { .. } => Ok(()),
        }
    }

    fn unlock(&mut self, level: LockLevel) -> VfsResult<()> {
        if let IdbHandle::Main { file, lock, .. } = self {
            file.try_borrow_mut()
                .map_err(|_| busy_borrow())?
                .unlock(lock, level);
        }
        Ok(())
    }

    fn check_reserved_lock(&self) -> VfsResult<bool> {
        match self {
            IdbHandle::Main { file, .. } => {
                Ok(file.try_borrow().map_err(|_| busy_borrow())?.write_locked())
            }
            IdbHandle::Aux { .. } => Ok(false),
        }
    }
}

fn cant_open(message: String) -> VfsError {
    VfsError::new(VfsErrorCode::CantOpen, message.into())
}

fn check_name(name: &str) -> VfsResult<()> {
    if name.is_empty() || name.len() >= MAX_PATH as usize || name.contains('\0') {
        return Err(cant_open(format!("invalid file name {name:?}")));
    }
    Ok(())
}

pub(crate) struct IdbStoreVfs;

impl VfsStore for IdbStoreVfs {
    type File = IdbHandle;
    type AppData = Rc<VfsState>;

    fn record_error(data: &Self::AppData, error: VfsError) {
        if let Ok(mut slot) = data.last_error.try_borrow_mut() {
            *slot = Some(error);
        }
    }

    fn last_error(data: &Self::AppData) -> Option<VfsError> {
        data.last_error.try_borrow().ok().and_then(|e| e.clone())
    }

    fn open_file(
        data: &Self::AppData,
        request: OpenRequest<'_>,
    ) -> VfsResult<OpenedFile<IdbHandle>> {
        let options = request.options;
        let read_only = options.access() == OpenAccess::ReadOnly;
        let opened = |file| {
            Ok(OpenedFile {
                file,
                access: options.access(),
            })
        };
        let Some(filename) = request.filename else {
            let file = Rc::new(RefCell::new(MemChunksFile::default()));
            return opened(IdbHandle::Aux { file, read_only });
        };
        let name = filename.path();
        check_name(name)?;
        match options.kind() {
            Some(FileKind::MainDb) => {
                let databases = data.databases.try_borrow().map_err(|_| busy_borrow())?;
                let Some(file) = databases.get(name) else {
                    return Err(cant_open(format!(
                        "no IndexedDB database is loaded as {name:?}: open it with IdbStore::open \
                         and pass IdbStore::file_name() to SQLite"
                    )));
                };
                if options.exclusive() {
                    return Err(cant_open(format!("file already exists: {name:?}")));
                }
                opened(IdbHandle::Main {
                    file: Rc::clone(file),
                    lock: LockLevel::None,
                    read_only,
                })
            }
            Some(FileKind::Wal) => Err(cant_open(
                "WAL is not supported on IndexedDB storage; use journal_mode MEMORY or DELETE"
                    .into(),
            )),
            _ => {
                if data.is_attached(name) {
                    return Err(cant_open(format!("{name:?} is a main database file")));
                }
                let mut aux = data.aux.try_borrow_mut().map_err(|_| busy_borrow())?;
                let file = match aux.get(name) {
                    Some(_) if options.exclusive() => {
                        return Err(cant_open(format!("file already exists: {name:?}")));
                    }
                    Some(file) => Rc::clone(file),
                    None if options.create() => {
                        let file = Rc::new(RefCell::new(MemChunksFile::default()));
                        aux.insert(name.to_owned(), Rc::clone(&file));
                        file
                    }
                    None => return Err(cant_open(format!("file not found: {name:?}"))),
                };
                opened(IdbHandle::Aux { file, read_only })
            }
        }
    }

    fn close_file(
        data: &Self::AppData,
        name: Option<&str>,
        file: IdbHandle,
        options: OpenOptions,
    ) -> VfsResult<()> {
        match file {
            IdbHandle::Main { file, mut lock, .. } => {
                if let Ok(mut f) = file.try_borrow_mut() {
                    f.unlock(&mut lock, LockLevel::None);
                }
            }
            IdbHandle::Aux { file, .. } => {
                if let (Some(name), true) = (name, options.delete_on_close()) {
                    let mut aux = data.aux.try_borrow_mut().map_err(|_| busy_borrow())?;
                    if aux.get(name).is_some_and(|f| Rc::ptr_eq(f, &file)) {
                        aux.remove(name);
                    }
                }
            }
        }
        Ok(())
    }

    fn access(data: &Self::AppData, name: &str, _mode: AccessMode) -> VfsResult<bool> {
        let aux = data.aux.try_borrow().map_err(|_| busy_borrow())?;
        Ok(aux.contains_key(name) || data.is_attached(name))
    }

    fn full_pathname(_data: &Self::AppData, name: &str) -> VfsResult<String> {
        check_name(name)?;
        Ok(name.to_owned())
    }

    fn delete_file(data: &Self::AppData, name: &str, _sync_dir: bool) -> VfsResult<()> {
        if data.is_attached(name) {
            return Err(VfsError::new(
                VfsErrorCode::IoDelete,
                format!("refusing to delete the main database file {name:?}").into(),
            ));
        }
        let mut aux = data.aux.try_borrow_mut().map_err(|_| busy_borrow())?;
        if aux.remove(name).is_none() {
            return Err(VfsError::new(
                VfsErrorCode::IoDeleteNoEntry,
                format!("file not found: {name:?}").into(),
            ));
        }
        Ok(())
    }
}

pub(crate) struct IdbIoMethods;

impl SQLiteIoMethods for IdbIoMethods {
    type Store = IdbStoreVfs;
}

pub(crate) struct IdbVfs;

impl SQLiteVfs<IdbIoMethods> for IdbVfs {
    type Os = WasmOsCallback;

    fn os(data: &Rc<VfsState>) -> &WasmOsCallback {
        &data.os
    }

    const MAX_PATH_SIZE: i32 = MAX_PATH;
}

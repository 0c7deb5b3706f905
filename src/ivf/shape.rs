//! What every scan and insert needs and a build fixes: dimensions, metric,
//! list centres (and their rotation), where the lists' ends are recorded.
//! Cached per backend and index, and checked against the meta page's build
//! id on every use, so a REINDEX elsewhere is noticed.

use super::buffers;
use super::pages::{self, Meta};
use interest_core::ivf::encode::{rotate_centres, Encoder};
use interest_core::ivf::metric::Metric;
use interest_core::ivf::rotation::Rotation;
use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub struct Shape {
    pub build_id: u64,
    pub dims: usize,
    pub metric: Metric,
    pub lists: usize,
    pub centres: Vec<f32>,
    pub rotated_centres: Vec<f32>,
    pub rotation: Rotation,
    pub tails_start: pg_sys::BlockNumber,
    /// The most lists an automatic scan probes (`ivf::automatic_probes` of
    /// the lists and the build's calibrated limit).
    pub automatic_probes: usize,
    /// Quiet steps in a row that end an automatic scan (the build's
    /// calibration; 1 in indexes built before it).
    pub quiet_steps: usize,
}

impl Shape {
    pub fn encoder(&self) -> Encoder<'_> {
        Encoder {
            dims: self.dims,
            centres: &self.centres,
            rotated_centres: &self.rotated_centres,
            rotation: &self.rotation,
        }
    }

    pub fn centre(&self, list: usize) -> &[f32] {
        &self.centres[list * self.dims..(list + 1) * self.dims]
    }

    pub fn rotated_centre(&self, list: usize) -> &[f32] {
        &self.rotated_centres[list * self.dims..(list + 1) * self.dims]
    }

    /// Where list `list`'s `ListEnds` item is: (block, offset).
    pub fn tail_slot(&self, list: usize) -> (pg_sys::BlockNumber, pg_sys::OffsetNumber) {
        tail_slot(self.tails_start, list)
    }
}

pub fn tail_slot(
    tails_start: pg_sys::BlockNumber,
    list: usize,
) -> (pg_sys::BlockNumber, pg_sys::OffsetNumber) {
    let per_page = pages::tails_per_page() as usize;
    (
        tails_start + (list / per_page) as pg_sys::BlockNumber,
        (list % per_page + 1) as pg_sys::OffsetNumber,
    )
}

thread_local! {
    static SHAPES: RefCell<HashMap<pg_sys::Oid, Rc<Shape>>> = RefCell::new(HashMap::new());
}

/// The index's shape, from the cache when its build id and dimensions
/// still match the meta page.
///
/// # Safety
/// `index` is an open index relation of this access method.
pub unsafe fn load(index: pg_sys::Relation) -> Rc<Shape> {
    let meta = unsafe { buffers::read_meta(index) };
    let oid = unsafe { (*index).rd_id };
    let cached = SHAPES.with(|s| s.borrow().get(&oid).cloned());
    if let Some(shape) = cached {
        if shape.build_id == meta.build_id && shape.dims == meta.dims as usize {
            return shape;
        }
    }
    let shape = Rc::new(unsafe { read_shape(index, &meta) });
    SHAPES.with(|s| s.borrow_mut().insert(oid, shape.clone()));
    shape
}

unsafe fn read_shape(index: pg_sys::Relation, meta: &Meta) -> Shape {
    let dims = meta.dims as usize;
    let lists = meta.lists as usize;
    let metric = Metric::from_code(meta.metric).unwrap_or_else(|| super::corrupt("unknown metric"));
    let mut centres = Vec::with_capacity(lists * dims);
    if meta.zero_centre != 0 {
        centres.resize(lists * dims, 0.0);
    } else {
        let mut block = meta.centres_start;
        while centres.len() < lists * dims {
            if block == pages::INVALID_BLOCK {
                super::corrupt("the centre pages end early");
            }
            unsafe {
                let buffer = buffers::lock_block(index, block, false);
                let page = pg_sys::BufferGetPage(buffer);
                for offset in 1..=pages::item_count(page) {
                    if let Some(bytes) = pages::item(page, offset) {
                        centres.extend(pages::bytes_to_floats(bytes));
                    }
                }
                block = pages::next_block(page);
                pg_sys::UnlockReleaseBuffer(buffer);
            }
        }
    }
    let rotation = Rotation::new(dims, meta.seed);
    let rotated_centres = if dims > 0 {
        rotate_centres(&rotation, &centres)
    } else {
        Vec::new()
    };
    Shape {
        build_id: meta.build_id,
        dims,
        metric,
        lists,
        centres,
        rotated_centres,
        rotation,
        tails_start: meta.tails_start,
        automatic_probes: meta.automatic_probes(),
        quiet_steps: meta.quiet_steps(),
    }
}

//! The C ABI the page calls (host/broker/console/src/e2e.js).
//!
//! Memory: the page asks for a buffer with [`e2e_alloc`], writes its input
//! there, passes pointer and length, and gives it back with [`e2e_free`]
//! (which zeroes it first: inputs are plaintext). Every call leaves its
//! output — JSON text, bytes, or an error's words — in one buffer the page
//! reads at once through [`e2e_output_ptr`] and [`e2e_output_len`]; the
//! next call replaces (and zeroes) it.
//!
//! Status codes returned: [`OK`], [`ERROR`] (the output is the reason, as
//! UTF-8), [`NONE`] (nothing to hand on: another endpoint's data frame, or
//! no code yet). Nothing here panics on the page's input; a trap would
//! leave the module unusable.
#![allow(unsafe_code)]

use std::cell::RefCell;

use zeroize::Zeroizing;

use crate::Channels;

/// The call succeeded; the output holds its result.
pub const OK: i32 = 0;
/// The call failed; the output holds why (UTF-8).
pub const ERROR: i32 = -1;
/// Nothing to hand on (see the function).
pub const NONE: i32 = -2;

thread_local! {
    static CHANNELS: RefCell<Channels> = RefCell::new(Channels::default());
    static OUTPUT: RefCell<Zeroizing<Vec<u8>>> = RefCell::new(Zeroizing::new(Vec::new()));
}

fn set_output(bytes: Vec<u8>) {
    OUTPUT.with(|o| *o.borrow_mut() = Zeroizing::new(bytes));
}

fn fail(e: impl std::fmt::Display) -> i32 {
    set_output(e.to_string().into_bytes());
    ERROR
}

/// The bytes the page passed: `len` bytes at `ptr`.
///
/// # Safety
/// `ptr` is a buffer of at least `len` bytes from [`e2e_alloc`] that the
/// page does not touch during the call (the module is single-threaded).
unsafe fn input<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: the caller's contract above.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// As [`input`], as UTF-8 text.
///
/// # Safety
/// As [`input`].
unsafe fn input_str<'a>(ptr: *const u8, len: usize) -> Result<&'a str, std::str::Utf8Error> {
    // SAFETY: the caller's contract.
    std::str::from_utf8(unsafe { input(ptr, len) })
}

/// A buffer of `len` bytes for the page's input.
#[unsafe(no_mangle)]
pub extern "C" fn e2e_alloc(len: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(len);
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

/// Gives back a buffer from [`e2e_alloc`], zeroed first.
///
/// # Safety
/// `ptr` and `len` are exactly those of one [`e2e_alloc`] call, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn e2e_free(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the allocation of `e2e_alloc(len)`, whose bytes the page
    // wrote (all `len` of them, or it zeroes them here anyway before the
    // Vec drops: u8 has no invalid values).
    unsafe {
        std::ptr::write_bytes(ptr, 0, len);
        drop(Vec::from_raw_parts(ptr, 0, len));
    }
}

/// Where the last call's output starts.
#[unsafe(no_mangle)]
pub extern "C" fn e2e_output_ptr() -> *const u8 {
    OUTPUT.with(|o| o.borrow().as_ptr())
}

/// How long the last call's output is.
#[unsafe(no_mangle)]
pub extern "C" fn e2e_output_len() -> usize {
    OUTPUT.with(|o| o.borrow().len())
}

/// Starts a channel for the session ID (`sid`, UTF-8) as `endpoint`,
/// keyed by the 32 bytes at `seed`: the channel's handle (> 0), output the
/// hello (JSON); or [`ERROR`].
///
/// # Safety
/// `sid_ptr`/`sid_len` and `seed_ptr` (32 bytes) as in [`input`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn e2e_start(
    sid_ptr: *const u8,
    sid_len: usize,
    endpoint: u64,
    seed_ptr: *const u8,
) -> i32 {
    // SAFETY: the caller's contract.
    let (sid, seed) = unsafe { (input_str(sid_ptr, sid_len), input(seed_ptr, 32)) };
    let sid = match sid {
        Ok(s) => s,
        Err(e) => return fail(format!("the session ID is not UTF-8: {e}")),
    };
    match CHANNELS.with(|c| c.borrow_mut().start(sid, endpoint, seed)) {
        Ok((handle, hello)) => {
            set_output(hello.into_bytes());
            i32::try_from(handle).unwrap_or(ERROR)
        }
        Err(e) => fail(e),
    }
}

/// Forgets channel `handle`.
#[unsafe(no_mangle)]
pub extern "C" fn e2e_close(handle: u32) {
    CHANNELS.with(|c| c.borrow_mut().close(handle));
}

/// One session message (JSON) from the broker for channel `handle` (0:
/// none): output the [`crate::Incoming`] JSON; always [`OK`] (a refusal
/// is a result).
///
/// # Safety
/// As [`input`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn e2e_incoming(handle: u32, ptr: *const u8, len: usize) -> i32 {
    // SAFETY: the caller's contract.
    let json = match unsafe { input_str(ptr, len) } {
        Ok(s) => s,
        Err(e) => return fail(format!("a session message is not UTF-8: {e}")),
    };
    let handle = (handle != 0).then_some(handle);
    let result = CHANNELS.with(|c| c.borrow_mut().incoming(handle, json));
    match serde_json::to_vec(&result) {
        Ok(out) => {
            set_output(out);
            OK
        }
        Err(e) => fail(e),
    }
}

/// Seals a content message (JSON): output the `sealed` message (JSON).
///
/// # Safety
/// As [`input`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn e2e_seal(handle: u32, ptr: *const u8, len: usize) -> i32 {
    // SAFETY: the caller's contract.
    let json = match unsafe { input_str(ptr, len) } {
        Ok(s) => s,
        Err(e) => return fail(format!("a session message is not UTF-8: {e}")),
    };
    match CHANNELS.with(|c| c.borrow_mut().seal(handle, json)) {
        Ok(sealed) => {
            set_output(sealed.into_bytes());
            OK
        }
        Err(e) => fail(e),
    }
}

/// Seals a data frame's payload: output the sealed payload.
///
/// # Safety
/// As [`input`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn e2e_seal_data(handle: u32, ptr: *const u8, len: usize) -> i32 {
    // SAFETY: the caller's contract.
    let payload = unsafe { input(ptr, len) };
    match CHANNELS.with(|c| c.borrow_mut().seal_data(handle, payload)) {
        Ok(sealed) => {
            set_output(sealed);
            OK
        }
        Err(e) => fail(e),
    }
}

/// Opens a data frame's payload from the agent: output the stream frame;
/// [`NONE`] when it is another endpoint's.
///
/// # Safety
/// As [`input`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn e2e_open_data(handle: u32, ptr: *const u8, len: usize) -> i32 {
    // SAFETY: the caller's contract.
    let payload = unsafe { input(ptr, len) };
    match CHANNELS.with(|c| c.borrow_mut().open_data(handle, payload)) {
        Ok(Some(frame)) => {
            set_output(frame);
            OK
        }
        Ok(None) => NONE,
        Err(e) => fail(e),
    }
}

/// The channel's security code: output "123 456"; [`NONE`] before the
/// channel is ready.
#[unsafe(no_mangle)]
pub extern "C" fn e2e_sas(handle: u32) -> i32 {
    match CHANNELS.with(|c| c.borrow().sas(handle)) {
        Ok(Some(sas)) => {
            set_output(sas.into_bytes());
            OK
        }
        Ok(None) => NONE,
        Err(e) => fail(e),
    }
}

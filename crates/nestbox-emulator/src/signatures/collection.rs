//! Collection: keylogging, screenshots, the clipboard.

use super::{Evidence, Sig, Signature, boxed, call_marks};

fn keylogger(ev: &Evidence<'_>) -> Vec<(String, String)> {
    // WH_KEYBOARD (2) and WH_KEYBOARD_LL (13).
    let hooks: Vec<_> = ev
        .calls_to(&["SetWindowsHookEx"])
        .into_iter()
        .filter(|c| matches!(c.num(0), Some(2 | 13)))
        .collect();
    let mut m = call_marks(&hooks);
    let polls = ev.calls_to(&["GetAsyncKeyState", "GetKeyState", "GetKeyboardState"]);
    if polls.len() >= 20 {
        m.push((
            "polling".to_owned(),
            format!("{} key state reads", polls.len()),
        ));
    }
    m
}

fn screenshot(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let (dc, copy) = (
        ev.calls_to(&["GetDC", "GetWindowDC", "CreateDC", "GetDesktopWindow"]),
        ev.calls_to(&["BitBlt", "StretchBlt", "PrintWindow"]),
    );
    if dc.is_empty() || copy.is_empty() {
        return Vec::new();
    }
    call_marks(&copy)
}

fn clipboard(ev: &Evidence<'_>) -> Vec<(String, String)> {
    let open = ev.calls_to(&["OpenClipboard"]);
    let get = ev.calls_to(&["GetClipboardData", "SetClipboardData"]);
    if open.is_empty() || get.is_empty() {
        return Vec::new();
    }
    call_marks(&get)
}

pub(super) fn all() -> Vec<Box<dyn Signature>> {
    boxed(vec![
        Sig {
            name: "keylogger",
            description: "Installs a keyboard hook or polls key states (keylogging)",
            severity: 3,
            categories: &["keylogger", "infostealer"],
            ttp: &[("T1056.001", "Input Capture: Keylogging")],
            find: keylogger,
        },
        Sig {
            name: "takes_screenshot",
            description: "Copies the screen contents (screenshot)",
            severity: 2,
            categories: &["infostealer"],
            ttp: &[("T1113", "Screen Capture")],
            find: screenshot,
        },
        Sig {
            name: "clipboard_access",
            description: "Reads or replaces the clipboard contents",
            severity: 2,
            categories: &["infostealer"],
            ttp: &[("T1115", "Clipboard Data")],
            find: clipboard,
        },
    ])
}

//! A small assembler for the eBPF instruction set: enough to write the tracer's programs
//! in Rust without clang or a BPF toolchain (the build stays `cargo build`). Jumps go to
//! labels, resolved when the program is finished.

/// One 8-byte instruction, as `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

/// A register (r0 return value, r1-r5 arguments, r6-r9 kept across calls, r10 frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R8: Reg = Reg(8);
pub const R9: Reg = Reg(9);
pub const FP: Reg = Reg(10);

/// Access sizes.
#[derive(Debug, Clone, Copy)]
pub enum Size {
    W = 0x00,
    B = 0x10,
    DW = 0x18,
}

/// Conditional jumps (unsigned unless named signed).
#[derive(Debug, Clone, Copy)]
pub enum Cond {
    Eq = 0x10,
    Gt = 0x20,
    Ne = 0x50,
    Le = 0xb0,
    /// Signed `<=`.
    Sle = 0xd0,
}

/// Kernel helper numbers (include/uapi/linux/bpf.h, `___BPF_FUNC_MAPPER`).
pub mod helper {
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const KTIME_GET_NS: i32 = 5;
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    pub const PROBE_READ_USER: i32 = 112;
    pub const PROBE_READ_USER_STR: i32 = 114;
    pub const PROBE_READ_KERNEL_STR: i32 = 115;
    pub const GET_CURRENT_TASK_BTF: i32 = 158;
    pub const TASK_PT_REGS: i32 = 175;
    pub const RINGBUF_OUTPUT: i32 = 130;
}

const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const ALU64: u8 = 0x07;
const MEM: u8 = 0x60;
const ATOMIC: u8 = 0xc0;
const IMM_MODE: u8 = 0x00;
const K: u8 = 0x00;
const X: u8 = 0x08;
const ADD: u8 = 0x00;
const AND: u8 = 0x50;
const MOV: u8 = 0xb0;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
const PSEUDO_MAP_FD: u8 = 1;

/// A jump target.
#[derive(Debug, Clone, Copy)]
pub struct Label(usize);

/// A program being written.
#[derive(Default)]
pub struct Asm {
    code: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    fn put(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) {
        self.code.push(Insn {
            code,
            regs: dst.0 | (src.0 << 4),
            off,
            imm,
        });
    }

    /// A new label, bound later with [`Asm::bind`].
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Puts `l` at the next instruction.
    pub fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.code.len());
    }

    pub fn mov(&mut self, dst: Reg, src: Reg) {
        self.put(ALU64 | MOV | X, dst, src, 0, 0);
    }

    /// 32-bit move: the upper half of `dst` becomes zero.
    pub fn mov32(&mut self, dst: Reg, src: Reg) {
        self.put(ALU | MOV | X, dst, src, 0, 0);
    }

    pub fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.put(ALU64 | MOV | K, dst, R0, 0, imm);
    }

    pub fn add_imm(&mut self, dst: Reg, imm: i32) {
        self.put(ALU64 | ADD | K, dst, R0, 0, imm);
    }

    pub fn and_imm(&mut self, dst: Reg, imm: i32) {
        self.put(ALU64 | AND | K, dst, R0, 0, imm);
    }

    pub fn add(&mut self, dst: Reg, src: Reg) {
        self.put(ALU64 | ADD | X, dst, src, 0, 0);
    }

    /// `dst = *(size *)(src + off)`.
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) {
        self.put(LDX | size as u8 | MEM, dst, src, off, 0);
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) {
        self.put(STX | size as u8 | MEM, dst, src, off, 0);
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn store_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) {
        self.put(ST | size as u8 | MEM, dst, R0, off, imm);
    }

    /// `*(u64 *)(dst + off) += src`, atomically.
    pub fn atomic_add(&mut self, dst: Reg, off: i16, src: Reg) {
        self.put(STX | Size::DW as u8 | ATOMIC, dst, src, off, i32::from(ADD));
    }

    /// `if dst <cond> imm goto to`.
    pub fn jump_if(&mut self, cond: Cond, dst: Reg, imm: i32, to: Label) {
        self.fixups.push((self.code.len(), to));
        self.put(JMP | cond as u8 | K, dst, R0, 0, imm);
    }

    /// `if dst <cond> src goto to`.
    pub fn jump_if_reg(&mut self, cond: Cond, dst: Reg, src: Reg, to: Label) {
        self.fixups.push((self.code.len(), to));
        self.put(JMP | cond as u8 | X, dst, src, 0, 0);
    }

    pub fn jump(&mut self, to: Label) {
        self.fixups.push((self.code.len(), to));
        self.put(JMP, R0, R0, 0, 0);
    }

    pub fn call(&mut self, helper: i32) {
        self.put(JMP | CALL, R0, R0, 0, helper);
    }

    pub fn exit(&mut self) {
        self.put(JMP | EXIT, R0, R0, 0, 0);
    }

    /// `dst = map` (a two-slot instruction the kernel rewrites to the map's address).
    pub fn load_map(&mut self, dst: Reg, fd: i32) {
        self.put(
            LD | Size::DW as u8 | IMM_MODE,
            dst,
            Reg(PSEUDO_MAP_FD),
            0,
            fd,
        );
        self.put(0, R0, R0, 0, 0);
    }

    /// The finished program; every used label must be bound.
    pub fn finish(mut self) -> Result<Vec<Insn>, String> {
        for (at, l) in std::mem::take(&mut self.fixups) {
            let to = self.labels[l.0].ok_or("ebpf: a jump to an unbound label")?;
            let off = to as i64 - at as i64 - 1;
            self.code[at].off =
                i16::try_from(off).map_err(|_| "ebpf: a jump too far".to_owned())?;
        }
        Ok(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_kernel_headers_and_resolves_jumps() {
        let mut a = Asm::default();
        let out = a.label();
        a.mov(R6, R1); // BPF_ALU64|BPF_MOV|BPF_X = 0xbf
        a.jump_if(Cond::Eq, R0, 0, out); // 0x15
        a.load(Size::DW, R1, R6, 8); // 0x79
        a.load_map(R1, 7); // 0x18 with src = 1
        a.bind(out);
        a.mov_imm(R0, 0); // 0xb7
        a.exit(); // 0x95
        let p = a.finish().unwrap();
        let codes: Vec<u8> = p.iter().map(|i| i.code).collect();
        assert_eq!(codes, [0xbf, 0x15, 0x79, 0x18, 0x00, 0xb7, 0x95]);
        assert_eq!(p[0].regs, 0x16);
        assert_eq!(p[1].off, 3, "to the mov after the two-slot map load");
        assert_eq!((p[3].regs, p[3].imm), (0x11, 7));
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn an_unbound_label_is_an_error() {
        let mut a = Asm::default();
        let l = a.label();
        a.jump(l);
        assert!(a.finish().is_err());
    }
}

// Executable packers and protectors, recognised by the section names and entry-point code
// they leave behind. Packing is not malice, but it hides the real code from static analysis,
// so an analyst wants to know.

import "pe"

rule UPX_Packed : packer
{
    meta:
        description = "UPX packed executable"
        author = "nestbox"
        packer = "UPX"

    strings:
        $marker = "UPX!"

    condition:
        (uint16(0) == 0x5A4D and
            for any s in pe.sections : (s.name == "UPX0" or s.name == "UPX1")) or
        (uint32(0) == 0x464C457F and $marker in (0..0x400))
}

rule MPRESS_Packed : packer
{
    meta:
        description = "MPRESS packed executable"
        author = "nestbox"
        packer = "MPRESS"

    condition:
        uint16(0) == 0x5A4D and
        for any s in pe.sections : (s.name == ".MPRESS1" or s.name == ".MPRESS2")
}

rule ASPack_Packed : packer
{
    meta:
        description = "ASPack packed executable"
        author = "nestbox"
        packer = "ASPack"

    strings:
        // pushad; call $+8; jmp ...: the ASPack 2.x loader stub at the entry point.
        $ep = { 60 E8 03 00 00 00 E9 EB 04 5D 45 55 C3 E8 01 }

    condition:
        uint16(0) == 0x5A4D and
        ((for any s in pe.sections : (s.name == ".aspack" or s.name == ".adata")) or
         $ep at pe.entry_point)
}

rule PECompact_Packed : packer
{
    meta:
        description = "PECompact packed executable"
        author = "nestbox"
        packer = "PECompact"

    condition:
        uint16(0) == 0x5A4D and
        for any s in pe.sections : (s.name == "PEC2" or s.name == "PEC2TO" or s.name == "PEC2MO" or s.name == "pec1")
}

rule NsPack_Packed : packer
{
    meta:
        description = "NsPack packed executable"
        author = "nestbox"
        packer = "NsPack"

    condition:
        uint16(0) == 0x5A4D and
        for any s in pe.sections : (s.name == ".nsp0" or s.name == ".nsp1" or s.name == ".nsp2" or s.name == "nsp0")
}

rule Petite_Packed : packer
{
    meta:
        description = "Petite packed executable"
        author = "nestbox"
        packer = "Petite"

    condition:
        uint16(0) == 0x5A4D and
        for any s in pe.sections : (s.name == ".petite")
}

rule Themida_Protected : packer protector
{
    meta:
        description = "Themida/WinLicense protected executable"
        author = "nestbox"
        packer = "Themida"

    condition:
        uint16(0) == 0x5A4D and
        for any s in pe.sections : (s.name == ".themida" or s.name == ".winlice")
}

rule VMProtect_Protected : packer protector
{
    meta:
        description = "VMProtect protected executable"
        author = "nestbox"
        packer = "VMProtect"

    condition:
        uint16(0) == 0x5A4D and
        for any s in pe.sections : (s.name == ".vmp0" or s.name == ".vmp1" or s.name == ".vmp2")
}

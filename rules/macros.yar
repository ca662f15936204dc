// Office documents and VBA code that run something when the document is opened.

rule Office_Macro_AutoExec_Shell : macro document
{
    meta:
        description = "VBA macro with an auto-exec entry point that runs a command or creates an object"
        author = "nestbox"

    strings:
        $a1 = "AutoOpen" nocase
        $a2 = "Auto_Open" nocase
        $a3 = "Document_Open" nocase
        $a4 = "Workbook_Open" nocase
        $a5 = "AutoExec" nocase
        $a6 = "Document_Close" nocase
        $a7 = "AutoClose" nocase
        $x1 = "Shell" fullword nocase
        $x2 = "WScript.Shell" nocase
        $x3 = "CreateObject" nocase
        $x4 = "Shell.Application" nocase
        $x5 = "powershell" nocase
        $x6 = "ShellExecute" nocase

    condition:
        filesize < 20MB and any of ($a*) and any of ($x*)
}

rule Office_VBA_Project : macro document
{
    meta:
        description = "Office file that contains a VBA project"
        author = "nestbox"

    strings:
        $ole_dir = "_VBA_PROJECT" wide
        $ooxml = "vbaProject.bin"
        $attr = "Attribute VB_Name" nocase

    condition:
        (uint32(0) == 0xE011CFD0 and $ole_dir) or
        (uint32(0) == 0x04034B50 and $ooxml) or
        (uint32(0) == 0xE011CFD0 and $attr)
}

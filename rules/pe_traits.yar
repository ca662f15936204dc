// Structural traits of PE files that are rare in ordinary software and common in malware.
// Each one alone is weak evidence; they are info-level findings for the analyst.

import "pe"
import "math"

rule PE_Section_Writable_Executable : pe suspicious
{
    meta:
        description = "PE section that is both writable and executable (self-modifying or unpacking code)"
        author = "nestbox"

    condition:
        uint16(0) == 0x5A4D and
        for any s in pe.sections : ((s.characteristics & 0xA0000000) == 0xA0000000)
}

rule PE_High_Entropy_Section : pe suspicious
{
    meta:
        description = "PE section with entropy above 7.2 (compressed or encrypted content)"
        author = "nestbox"

    condition:
        uint16(0) == 0x5A4D and
        for any s in pe.sections : (
            s.raw_data_size > 1024 and
            s.raw_data_offset + s.raw_data_size <= filesize and
            math.entropy(s.raw_data_offset, s.raw_data_size) > 7.2
        )
}

rule PE_Entry_Point_In_Last_Section : pe suspicious
{
    meta:
        description = "Entry point in the last of several sections (typical of packers and file infectors)"
        author = "nestbox"

    condition:
        uint16(0) == 0x5A4D and pe.number_of_sections > 2 and
        pe.entry_point >= pe.sections[pe.number_of_sections - 1].raw_data_offset and
        pe.entry_point < pe.sections[pe.number_of_sections - 1].raw_data_offset +
                         pe.sections[pe.number_of_sections - 1].raw_data_size
}

rule PE_Process_Injection_APIs : pe suspicious
{
    meta:
        description = "Names of the APIs used to inject code into another process"
        author = "nestbox"

    strings:
        $a1 = "VirtualAllocEx"
        $a2 = "WriteProcessMemory"
        $a3 = "CreateRemoteThread"
        $a4 = "NtUnmapViewOfSection"
        $a5 = "QueueUserAPC"
        $a6 = "SetThreadContext"

    condition:
        uint16(0) == 0x5A4D and 3 of them
}

rule PE_Anti_Debugging : pe suspicious
{
    meta:
        description = "Several anti-debugging API names"
        author = "nestbox"

    strings:
        $a1 = "IsDebuggerPresent"
        $a2 = "CheckRemoteDebuggerPresent"
        $a3 = "NtQueryInformationProcess"
        $a4 = "OutputDebugStringA"
        $a5 = "NtSetInformationThread"

    condition:
        uint16(0) == 0x5A4D and 3 of them
}

rule PE_Dynamic_API_Resolution_Only : pe suspicious
{
    meta:
        description = "PE importing little besides LoadLibrary/GetProcAddress (imports resolved at run time)"
        author = "nestbox"

    condition:
        uint16(0) == 0x5A4D and
        pe.number_of_imported_functions > 0 and pe.number_of_imported_functions <= 4 and
        pe.imports("kernel32.dll", "GetProcAddress") and
        (pe.imports("kernel32.dll", "LoadLibraryA") or pe.imports("kernel32.dll", "LoadLibraryW"))
}

// Script droppers and download cradles: the first stage of most commodity infections.

rule PowerShell_Encoded_Command : script dropper
{
    meta:
        description = "PowerShell started with a base64-encoded command"
        author = "nestbox"

    strings:
        $ps = "powershell" nocase
        $enc = /\s-(e|ec|enc|enco|encod|encode|encodedcommand)\s+[A-Za-z0-9+\/=]{40,}/ nocase

    condition:
        $ps and $enc
}

rule PowerShell_Download_Cradle : script dropper
{
    meta:
        description = "PowerShell that downloads and executes code"
        author = "nestbox"

    strings:
        $wc = "Net.WebClient" nocase
        $d1 = "DownloadString" nocase
        $d2 = "DownloadFile" nocase
        $d3 = "DownloadData" nocase
        $i1 = "Invoke-Expression" nocase
        $i2 = /\bIEX\b/ nocase
        $i3 = "Start-Process" nocase

    condition:
        $wc and any of ($d*) and any of ($i*)
}

rule Script_WSH_Downloader : script dropper
{
    meta:
        description = "Windows Script Host code that downloads a file and runs it"
        author = "nestbox"

    strings:
        $h1 = "MSXML2.XMLHTTP" nocase
        $h2 = "Microsoft.XMLHTTP" nocase
        $h3 = "WinHttp.WinHttpRequest" nocase
        $s1 = "ADODB.Stream" nocase
        $s2 = "SaveToFile" nocase
        $r1 = "WScript.Shell" nocase
        $r2 = "Shell.Application" nocase

    condition:
        filesize < 5MB and any of ($h*) and any of ($s*) and any of ($r*)
}

rule Script_LOLBin_Download : script dropper
{
    meta:
        description = "Windows living-off-the-land binaries used to fetch or decode payloads"
        author = "nestbox"

    strings:
        $c1 = /certutil(\.exe)?\s+(-|\/)(urlcache|decode|decodehex)/ nocase
        $c2 = /bitsadmin(\.exe)?\s+\/transfer/ nocase
        $c3 = /mshta(\.exe)?\s+["']?(https?|vbscript|javascript):/ nocase
        $c4 = /regsvr32(\.exe)?\s+\/s\s+\/n\s+\/u\s+\/i:https?:/ nocase
        $c5 = /rundll32(\.exe)?\s+javascript:/ nocase

    condition:
        filesize < 5MB and any of them
}

rule Shell_Download_And_Execute : script dropper
{
    meta:
        description = "Unix shell one-liner that downloads a script and pipes it to a shell"
        author = "nestbox"

    strings:
        $p = /(curl|wget)\s[^\n|;]{1,200}\|\s*(ba|da|z)?sh\b/

    condition:
        filesize < 5MB and $p
}

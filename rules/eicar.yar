// The EICAR anti-virus test file: a harmless 68-byte COM program every scanner detects by
// design. It is how an operator checks that scanning works end to end.

rule EICAR_Test_File : test
{
    meta:
        description = "EICAR anti-virus test file"
        author = "nestbox"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"
        severity = 1

    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

    condition:
        // The standard allows up to 128 bytes of trailing white space after the string.
        $eicar at 0 and filesize <= 196
}

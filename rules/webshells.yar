// Web shells: server-side scripts that run what an HTTP request tells them to.

rule Webshell_PHP_Eval_Request : webshell
{
    meta:
        description = "PHP that evaluates code taken from the request"
        author = "nestbox"

    strings:
        $php = "<?" ascii
        $e = /(eval|assert|create_function)\s*\(\s*(base64_decode|gzinflate|gzuncompress|str_rot13|stripslashes)?\s*\(?\s*\$_(POST|GET|REQUEST|COOKIE|SERVER)/ nocase

    condition:
        filesize < 2MB and $php and $e
}

rule Webshell_PHP_System_Request : webshell
{
    meta:
        description = "PHP that runs a shell command taken from the request"
        author = "nestbox"

    strings:
        $php = "<?" ascii
        $s = /(system|passthru|shell_exec|exec|popen|proc_open)\s*\(\s*\$_(POST|GET|REQUEST|COOKIE)/ nocase

    condition:
        filesize < 2MB and $php and $s
}

rule Webshell_ASP_Eval_Request : webshell
{
    meta:
        description = "ASP/ASPX that evaluates code taken from the request"
        author = "nestbox"

    strings:
        $a = /(eval|execute|executeglobal)\s*\(\s*request(\.(item|form|querystring))?\s*[\(\[]/ nocase

    condition:
        filesize < 2MB and $a
}

rule Webshell_JSP_Runtime_Exec : webshell
{
    meta:
        description = "JSP that runs a command taken from a request parameter"
        author = "nestbox"

    strings:
        $j = /Runtime\.getRuntime\(\)\.exec\(\s*request\.getParameter/

    condition:
        filesize < 2MB and $j
}

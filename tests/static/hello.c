/* A benign Windows program for the static-analysis cross-check: imports by name
 * (kernel32, user32, advapi32), by ordinal (ws2_32 and oleaut32 through ord.def), and
 * exports two functions when built as a DLL. It is compiled, never run. */
#include <winsock2.h>
#include <windows.h>
#include <oleauto.h>

__declspec(dllexport) int nestbox_add(int a, int b) { return a + b; }
__declspec(dllexport) int nestbox_mul(int a, int b) { return a * b; }

int main(int argc, char **argv) {
    char buf[512];
    WSADATA wsa;
    HKEY key;
    if (argc > 5) {
        WSAStartup(0x202, &wsa);
        WSACleanup();
        SysAllocString(L"x");
        RegOpenKeyExA(HKEY_CURRENT_USER, "Software", 0, KEY_READ, &key);
        MessageBoxA(NULL, "hello", argv[0], MB_OK);
    }
    GetModuleFileNameA(NULL, buf, sizeof buf);
    return (int)GetTickCount() & 1;
}

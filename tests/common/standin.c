/*
 * A stand-in for Mattermost's bin/mattermost and bin/mmctl in the boot tests, where the
 * packages run under a real systemd. Compiled with `gcc -static` by tests/common/standin.rs;
 * MM_VERSION is the version it reports. Which program it is comes from its name (argv[0]).
 *
 * As the server (any name but mmctl) it does what the packaging relies on, the way upstream's
 * server does it:
 *  - config: from $MM_CONFIG when set (a database DSN, postgres:// or mysql://, means the
 *    config is in the database and no file is read or written), else config/config.json
 *    below the working directory; environment variables MM_<SECTION>_<SETTING> win over the
 *    file (MM_SQLSETTINGS_DATASOURCE, MM_SERVICESETTINGS_LISTENADDRESS,
 *    MM_SERVICESETTINGS_ENABLELOCALMODE);
 *  - it rewrites config.json while starting, as upstream does when it fills in settings a
 *    new version added (here: a "_server_version" field; an empty file gets defaults);
 *  - it binds ServiceSettings.ListenAddress and answers GET /api/v4/system/ping with what it
 *    sees (version, uid, the data source and where its config came from);
 *  - with local mode on, it serves the same on the Unix socket
 *    $MM_SERVICESETTINGS_LOCALMODESOCKETLOCATION (default /var/tmp/mattermost_local.socket),
 *    mode 0600;
 *  - it appends a line to logs/mattermost.log and tells systemd READY=1 on $NOTIFY_SOCKET.
 *
 * As mmctl it supports `--local` only: like upstream's mmctl it checks that the socket
 * ($MMCTL_LOCAL_SOCKET_PATH) is a socket of mode 0600 owned by the caller (root may use any)
 * and prints what the server answers on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MM_VERSION
#error "compile with -DMM_VERSION='\"x.y.z\"'"
#endif

#define DEFAULT_SOCKET "/var/tmp/mattermost_local.socket"
#define CONFIG_FILE "config/config.json"

static char config_text[65536];
/* The config as the server uses it (after its rewrite); empty for a config in the database. */
static const char *config = "";
static char datasource[1024];
static char listen_address[256];
static char config_source[512];
static int local_mode;

static void die(const char *what) {
    fprintf(stderr, "mattermost stand-in: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The string value of "key" in the JSON text, or NULL. Good enough for the flat values the
 * stand-in reads; no escapes. */
static const char *json_string(const char *text, const char *key, char *out, size_t len) {
    char quoted[128];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *at = strstr(text, quoted);
    if (!at)
        return NULL;
    at = strchr(at + strlen(quoted), ':');
    if (!at)
        return NULL;
    at += strspn(at + 1, " \t\r\n") + 1;
    if (*at != '"')
        return NULL;
    const char *end = strchr(at + 1, '"');
    if (!end || (size_t)(end - at - 1) >= len)
        return NULL;
    memcpy(out, at + 1, end - at - 1);
    out[end - at - 1] = 0;
    return out;
}

static int json_true(const char *text, const char *key) {
    char quoted[128];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *at = strstr(text, quoted);
    if (!at)
        return 0;
    at = strchr(at + strlen(quoted), ':');
    return at && strncmp(at + 1 + strspn(at + 1, " \t\r\n"), "true", 4) == 0;
}

/* Reads the config file and writes it back the way the server does on start: a version
 * field added or updated, defaults in an empty file. */
static void load_and_rewrite(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path);
    ssize_t n = read(fd, config_text, sizeof config_text - 1);
    if (n < 0)
        die(path);
    config_text[n] = 0;
    close(fd);

    const char *body = config_text + strspn(config_text, " \t\r\n");
    if (*body != '{')
        body = "{\n  \"ServiceSettings\": {\"ListenAddress\": \":8065\"},\n"
               "  \"SqlSettings\": {\"DriverName\": \"postgres\", \"DataSource\": \"\"}\n}\n";
    /* Drop an earlier version line, then put ours after the opening brace. */
    static char rest[sizeof config_text];
    snprintf(rest, sizeof rest, "%s", body + 1);
    const char *field = "\n  \"_server_version\": \"";
    char *old = strstr(rest, field);
    if (old) {
        char *end = strstr(old + strlen(field), "\",");
        if (end)
            memmove(old, end + 2, strlen(end + 2) + 1);
    }
    static char rewritten[sizeof config_text + 128];
    int len = snprintf(rewritten, sizeof rewritten, "{%s%s\",%s", field, MM_VERSION, rest);
    if (strcmp(rewritten, config_text) != 0) {
        fd = open(path, O_WRONLY | O_TRUNC);
        if (fd < 0 || write(fd, rewritten, len) != len || close(fd) != 0)
            die(path);
    }
    config = rewritten;
}

static void load_config(void) {
    const char *mm_config = getenv("MM_CONFIG");
    if (mm_config && (strncmp(mm_config, "postgres://", 11) == 0 ||
                      strncmp(mm_config, "postgresql://", 13) == 0 ||
                      strncmp(mm_config, "mysql://", 8) == 0)) {
        snprintf(config_source, sizeof config_source, "database");
    } else {
        const char *path = mm_config && *mm_config ? mm_config : CONFIG_FILE;
        snprintf(config_source, sizeof config_source, "file:%s", path);
        load_and_rewrite(path);
    }
    const char *env;
    if ((env = getenv("MM_SQLSETTINGS_DATASOURCE")))
        snprintf(datasource, sizeof datasource, "%s", env);
    else if (!json_string(config, "DataSource", datasource, sizeof datasource))
        datasource[0] = 0;
    if ((env = getenv("MM_SERVICESETTINGS_LISTENADDRESS")))
        snprintf(listen_address, sizeof listen_address, "%s", env);
    else if (!json_string(config, "ListenAddress", listen_address, sizeof listen_address) ||
             !*listen_address)
        snprintf(listen_address, sizeof listen_address, ":8065");
    env = getenv("MM_SERVICESETTINGS_ENABLELOCALMODE");
    local_mode = env ? strcmp(env, "true") == 0 : json_true(config, "EnableLocalMode");
}

static int listen_tcp(void) {
    char host[256];
    const char *colon = strrchr(listen_address, ':');
    if (!colon)
        die("ListenAddress has no port");
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen_address), listen_address);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (*host && inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        die("ListenAddress host is not an IPv4 address");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0)
        die(listen_address);
    return fd;
}

static int listen_local(void) {
    const char *path = getenv("MM_SERVICESETTINGS_LOCALMODESOCKETLOCATION");
    if (!path || !*path)
        path = DEFAULT_SOCKET;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0)
        die(path);
    if (chmod(path, 0600) != 0)
        die(path);
    return fd;
}

static void notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path)
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    if (addr.sun_path[0] == '@')
        addr.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
    if (fd < 0 || sendto(fd, state, strlen(state), 0, (struct sockaddr *)&addr, len) < 0)
        die("NOTIFY_SOCKET");
    close(fd);
}

static void log_line(const char *msg) {
    char line[2048];
    int len = snprintf(line, sizeof line,
                       "{\"timestamp\":%ld,\"level\":\"info\",\"msg\":\"%s\",\"version\":\"%s\"}\n",
                       (long)time(NULL), msg, MM_VERSION);
    int fd = open("logs/mattermost.log", O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0 || write(fd, line, len) != len)
        die("logs/mattermost.log");
    close(fd);
    fputs(line, stdout);
    fflush(stdout);
}

static void answer(int conn, int local) {
    char request[4096];
    ssize_t n = read(conn, request, sizeof request - 1);
    if (n <= 0)
        return;
    request[n] = 0;
    char body[2048];
    const char *status = "200 OK";
    if (strncmp(request, "GET /api/v4/system/ping ", 24) == 0)
        snprintf(body, sizeof body,
                 "{\"status\":\"OK\",\"version\":\"%s\",\"uid\":%u,\"datasource\":\"%s\","
                 "\"config\":\"%s\",\"local\":%s}",
                 MM_VERSION, (unsigned)getuid(), datasource, config_source,
                 local ? "true" : "false");
    else {
        status = "404 Not Found";
        snprintf(body, sizeof body, "{\"status\":\"not found\"}");
    }
    dprintf(conn, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                  "Connection: close\r\n\r\n%s",
            status, strlen(body), body);
}

static void server(void) {
    signal(SIGPIPE, SIG_IGN);
    load_config();
    struct pollfd fds[2] = {{.fd = listen_tcp(), .events = POLLIN}, {.fd = -1}};
    int count = 1;
    if (local_mode) {
        fds[1] = (struct pollfd){.fd = listen_local(), .events = POLLIN};
        count = 2;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "Server is listening on %s", listen_address);
    log_line(msg);
    notify("READY=1\nSTATUS=listening");
    for (;;) {
        if (poll(fds, count, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        for (int i = 0; i < count; i++) {
            if (fds[i].revents & POLLIN) {
                int conn = accept(fds[i].fd, NULL, NULL);
                if (conn >= 0) {
                    answer(conn, i == 1);
                    close(conn);
                }
            }
        }
    }
}

static int mmctl(int argc, char **argv) {
    int local = 0;
    for (int i = 1; i < argc; i++)
        local |= strcmp(argv[i], "--local") == 0;
    if (!local) {
        fprintf(stderr, "Error: this stand-in of mmctl knows --local only\n");
        return 1;
    }
    const char *path = getenv("MMCTL_LOCAL_SOCKET_PATH");
    if (!path || !*path)
        path = DEFAULT_SOCKET;
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "Error: socket file \"%s\" doesn't exist: %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISSOCK(st.st_mode) || (st.st_mode & 07777) != 0600) {
        fprintf(stderr, "Error: \"%s\" must be a socket with 0600 permissions\n", path);
        return 1;
    }
    if (st.st_uid != getuid() && getuid() != 0) {
        fprintf(stderr, "Error: owner of the file \"%s\" must be the same user running mmctl\n",
                path);
        return 1;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf(stderr, "Error: cannot connect to \"%s\": %s\n", path, strerror(errno));
        return 1;
    }
    dprintf(fd, "GET /api/v4/system/ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
    char reply[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof reply - 1 && (n = read(fd, reply + len, sizeof reply - 1 - len)) > 0)
        len += n;
    reply[len] = 0;
    const char *body = strstr(reply, "\r\n\r\n");
    if (strncmp(reply, "HTTP/1.1 200 ", 13) != 0 || !body) {
        fprintf(stderr, "Error: the server answered:\n%s\n", reply);
        return 1;
    }
    puts(body + 4);
    return 0;
}

int main(int argc, char **argv) {
    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    if (strcmp(name, "mmctl") == 0)
        return mmctl(argc, argv);
    server();
    return 0;
}

// Zipkin server stand-in (tests only; NOT Zipkin).  JDK standard library only.
// Reproduces the surface of zipkin-server 3.x that aic.gateway's roles and tests touch; see README.md
// next to this file for the upstream source of each behaviour and for what is missing.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ExecutorService;

public final class ZipkinStandin {
    static String version = "unknown";
    static final Object LOCK = new Object();
    // traceId -> spans, in arrival order of the trace's first span (oldest first, for eviction)
    static final LinkedHashMap<String, List<Map<String, Object>>> TRACES = new LinkedHashMap<>();
    static long spanCount = 0;
    static long maxSpans = 500000;
    static long collectorSpans = 0, collectorMessages = 0, collectorBytes = 0, collectorDropped = 0, collectorMessagesDropped = 0;

    public static void main(String[] args) throws Exception {
        try (InputStream in = ZipkinStandin.class.getResourceAsStream("/zipkin-standin-version.txt")) {
            if (in != null) version = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
        }
        for (String a : args) {
            if (a.equals("--version") || a.equals("-v")) {
                // Stand-in only: the real exec jar has no --version flag (it starts the server).
                System.out.println("zipkin-server stand-in " + version);
                return;
            }
        }
        String storage = env("STORAGE_TYPE", "mem");
        if (!storage.equals("mem")) {
            System.err.println("zipkin stand-in " + version + ": STORAGE_TYPE=" + storage
                + " is not implemented by the stand-in (it has only the in-memory store, STORAGE_TYPE=mem;"
                + " real zipkin-server also supports cassandra3, elasticsearch and mysql)");
            System.exit(1);
        }
        int port;
        try {
            port = Integer.parseInt(env("QUERY_PORT", "9411"));
            maxSpans = Long.parseLong(env("MEM_MAX_SPANS", "500000"));
        } catch (NumberFormatException e) {
            System.err.println("zipkin stand-in: QUERY_PORT and MEM_MAX_SPANS must be integers: " + e.getMessage());
            System.exit(1);
            return;
        }
        long started = System.nanoTime();
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 64);
        server.createContext("/", ZipkinStandin::handle);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        server.setExecutor(pool);
        server.start();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("zipkin stand-in: stopping (signal), finishing in-flight requests");
            server.stop(1);
            pool.shutdown();
            System.out.println("zipkin stand-in: stopped");
            System.out.flush();
            stopped.countDown();
        }));
        System.out.printf("zipkin stand-in %s: Started ZipkinServer in %.3f seconds, listening on port %d (STORAGE_TYPE=mem, MEM_MAX_SPANS=%d)%n",
            version, (System.nanoTime() - started) / 1e9, server.getAddress().getPort(), maxSpans);
        System.out.flush();
        stopped.await();
    }

    static String env(String name, String dflt) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? dflt : v;
    }

    // ---------------------------------------------------------------- HTTP
    static void handle(HttpExchange ex) throws IOException {
        try {
            String method = ex.getRequestMethod();
            String path = ex.getRequestURI().getRawPath();
            Map<String, String> q = query(ex.getRequestURI().getRawQuery());
            if (path.equals("/api/v2/spans") && method.equals("POST")) { postSpans(ex); return; }
            if (!method.equals("GET") && !method.equals("HEAD")) { send(ex, 405, "text/plain; charset=utf-8", "Method Not Allowed"); return; }
            switch (path) {
                case "/health": case "/actuator/health":
                    send(ex, 200, path.equals("/health") ? "application/json; charset=utf-8"
                        : "application/vnd.spring-boot.actuator.v2+json; charset=utf-8",
                        "{\n  \"status\" : \"UP\",\n  \"zipkin\" : {\n    \"status\" : \"UP\",\n    \"details\" : {\n"
                        + "      \"InMemoryStorage{}\" : {\n        \"status\" : \"UP\"\n      }\n    }\n  }\n}");
                    return;
                case "/info": case "/actuator/info":
                    send(ex, 200, "application/json; charset=utf-8",
                        "{\"zipkin\":{\"version\":" + quote(version) + ",\"commit\":\"standin\"}}");
                    return;
                case "/prometheus": case "/actuator/prometheus":
                    send(ex, 200, "text/plain; version=0.0.4; charset=utf-8", prometheus());
                    return;
                case "/api/v2/services":
                    send(ex, 200, "application/json", names(null, null)); return;
                case "/api/v2/spans":
                    if (q.get("serviceName") == null) { send(ex, 400, "text/plain; charset=utf-8", "serviceName is required"); return; }
                    send(ex, 200, "application/json", names(q.get("serviceName").toLowerCase(), "local")); return;
                case "/api/v2/remoteServices":
                    if (q.get("serviceName") == null) { send(ex, 400, "text/plain; charset=utf-8", "serviceName is required"); return; }
                    send(ex, 200, "application/json", names(q.get("serviceName").toLowerCase(), "remote")); return;
                case "/api/v2/traces":
                    send(ex, 200, "application/json", traces(q)); return;
                case "/zipkin": case "/zipkin/":
                    send(ex, 200, "text/html; charset=utf-8", "<!doctype html><title>Zipkin stand-in</title><p>Zipkin stand-in " + version + ": no UI.</p>");
                    return;
                default:
            }
            if (path.startsWith("/api/v2/trace/")) {
                String id = normalizeId(path.substring("/api/v2/trace/".length()));
                List<Map<String, Object>> spans;
                synchronized (LOCK) { spans = TRACES.get(id) == null ? null : new ArrayList<>(TRACES.get(id)); }
                if (spans == null) { send(ex, 404, "text/plain; charset=utf-8", path.substring("/api/v2/trace/".length()) + " not found"); return; }
                send(ex, 200, "application/json", Json.write(spans));
                return;
            }
            send(ex, 404, "text/plain; charset=utf-8", "Not Found");
        } catch (RuntimeException e) {
            send(ex, 500, "text/plain; charset=utf-8", String.valueOf(e));
        } finally {
            ex.close();
        }
    }

    static void postSpans(HttpExchange ex) throws IOException {
        byte[] body = ex.getRequestBody().readAllBytes();
        String ctype = String.valueOf(ex.getRequestHeaders().getFirst("Content-Type"));
        if (ctype.contains("protobuf") || ctype.contains("thrift")) {
            send(ex, 415, "text/plain; charset=utf-8", "zipkin stand-in accepts only JSON v2 spans, not " + ctype);
            return;
        }
        List<Map<String, Object>> spans = new ArrayList<>();
        try {
            Object parsed = Json.parse(new String(body, StandardCharsets.UTF_8));
            if (!(parsed instanceof List)) throw new IllegalArgumentException("Expected a JSON_V2 encoded list");
            for (Object o : (List<?>) parsed) {
                if (!(o instanceof Map)) throw new IllegalArgumentException("Expected a JSON_V2 encoded list of span objects");
                @SuppressWarnings("unchecked") Map<String, Object> s = (Map<String, Object>) o;
                spans.add(checkSpan(s));
            }
        } catch (IllegalArgumentException e) {
            synchronized (LOCK) { collectorMessagesDropped++; }
            send(ex, 400, "text/plain; charset=utf-8", "Malformed reading List<Span> from json: " + e.getMessage());
            return;
        }
        synchronized (LOCK) {
            collectorMessages++;
            collectorBytes += body.length;
            collectorSpans += spans.size();
            for (Map<String, Object> s : spans) {
                TRACES.computeIfAbsent((String) s.get("traceId"), k -> new ArrayList<>()).add(s);
                spanCount++;
            }
            // MEM_MAX_SPANS: drop whole oldest traces until under the cap (InMemoryStorage evicts oldest traces).
            Iterator<Map.Entry<String, List<Map<String, Object>>>> it = TRACES.entrySet().iterator();
            while (spanCount > maxSpans && it.hasNext()) {
                spanCount -= it.next().getValue().size();
                it.remove();
            }
        }
        send(ex, 202, null, "");
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> checkSpan(Map<String, Object> s) {
        Object tid = s.get("traceId"), id = s.get("id");
        if (!(tid instanceof String) || !((String) tid).matches("[0-9a-fA-F]{1,32}"))
            throw new IllegalArgumentException("traceId should be a 1 to 32 character hex string");
        if (!(id instanceof String) || !((String) id).matches("[0-9a-fA-F]{1,16}"))
            throw new IllegalArgumentException("id should be a 1 to 16 character hex string");
        s.put("traceId", normalizeId((String) tid));
        s.put("id", pad((String) id, 16));
        if (s.get("parentId") instanceof String) s.put("parentId", pad((String) s.get("parentId"), 16));
        if (s.get("name") instanceof String) s.put("name", ((String) s.get("name")).toLowerCase());
        for (String ep : new String[] {"localEndpoint", "remoteEndpoint"}) {
            if (s.get(ep) instanceof Map) {
                Map<String, Object> e = (Map<String, Object>) s.get(ep);
                if (e.get("serviceName") instanceof String) e.put("serviceName", ((String) e.get("serviceName")).toLowerCase());
            }
        }
        return s;
    }

    static String pad(String hex, int len) {
        hex = hex.toLowerCase();
        return hex.length() >= len ? hex : "0".repeat(len - hex.length()) + hex;
    }

    static String normalizeId(String hex) {
        hex = hex.toLowerCase();
        return pad(hex, hex.length() > 16 ? 32 : 16);
    }

    @SuppressWarnings("unchecked")
    static String service(Map<String, Object> span, String which) {
        Object e = span.get(which + "Endpoint");
        if (!(e instanceof Map)) return null;
        Object n = ((Map<String, Object>) e).get("serviceName");
        return n instanceof String ? (String) n : null;
    }

    /** serviceName null: all local service names; else span names (local) or remote service names (remote) of that service. */
    static String names(String serviceName, String kind) {
        TreeSet<String> out = new TreeSet<>();
        synchronized (LOCK) {
            for (List<Map<String, Object>> trace : TRACES.values()) {
                for (Map<String, Object> s : trace) {
                    String local = service(s, "local");
                    if (serviceName == null) {
                        if (local != null) out.add(local);
                    } else if (serviceName.equals(local)) {
                        String v = kind.equals("local") ? (String) s.get("name") : service(s, "remote");
                        if (v != null && !v.isEmpty()) out.add(v);
                    }
                }
            }
        }
        return Json.write(new ArrayList<>(out));
    }

    static long num(Map<String, String> q, String key, long dflt) {
        String v = q.get(key);
        if (v == null || v.isEmpty()) return dflt;
        return Long.parseLong(v);
    }

    static String traces(Map<String, String> q) {
        String serviceName = q.get("serviceName") == null ? null : q.get("serviceName").toLowerCase();
        String spanName = q.get("spanName") == null ? null : q.get("spanName").toLowerCase();
        long endTs = num(q, "endTs", System.currentTimeMillis());
        long lookback = num(q, "lookback", 86400000L);
        long limit = num(q, "limit", 10);
        long minDuration = num(q, "minDuration", -1), maxDuration = num(q, "maxDuration", Long.MAX_VALUE);
        long fromMicros = (endTs - lookback) * 1000, toMicros = endTs * 1000;
        List<List<Map<String, Object>>> matched = new ArrayList<>();
        List<Long> starts = new ArrayList<>();
        synchronized (LOCK) {
            for (List<Map<String, Object>> trace : TRACES.values()) {
                boolean ok = false;
                long start = Long.MAX_VALUE;
                for (Map<String, Object> s : trace) {
                    long ts = s.get("timestamp") instanceof Number ? ((Number) s.get("timestamp")).longValue() : 0;
                    if (ts > 0) start = Math.min(start, ts);
                    if (ts < fromMicros || ts > toMicros) continue;
                    if (serviceName != null && !serviceName.equals(service(s, "local"))) continue;
                    if (spanName != null && !spanName.equals(s.get("name"))) continue;
                    long d = s.get("duration") instanceof Number ? ((Number) s.get("duration")).longValue() : 0;
                    if (minDuration >= 0 && (d < minDuration || d > maxDuration)) continue;
                    ok = true;
                }
                if (ok) { matched.add(new ArrayList<>(trace)); starts.add(start); }
            }
        }
        // newest first, then the limit
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < matched.size(); i++) order.add(i);
        order.sort((a, b) -> Long.compare(starts.get(b), starts.get(a)));
        List<Object> out = new ArrayList<>();
        for (int i = 0; i < order.size() && i < limit; i++) out.add(matched.get(order.get(i)));
        return Json.write(out);
    }

    static String prometheus() {
        StringBuilder b = new StringBuilder();
        synchronized (LOCK) {
            counter(b, "zipkin_collector_messages_total", "Messages received", collectorMessages);
            counter(b, "zipkin_collector_messages_dropped_total", "Messages dropped", collectorMessagesDropped);
            counter(b, "zipkin_collector_spans_total", "Spans received", collectorSpans);
            counter(b, "zipkin_collector_spans_dropped_total", "Spans dropped", collectorDropped);
            counter(b, "zipkin_collector_bytes_total", "Span bytes received", collectorBytes);
        }
        b.append("# HELP zipkin_standin_info Stand-in build information (not a real Zipkin metric)\n")
         .append("# TYPE zipkin_standin_info gauge\n")
         .append("zipkin_standin_info{version=\"").append(version).append("\",} 1.0\n");
        return b.toString();
    }

    static void counter(StringBuilder b, String name, String help, long v) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n')
         .append("# TYPE ").append(name).append(" counter\n")
         .append(name).append("{transport=\"http\",} ").append((double) v).append('\n');
    }

    static Map<String, String> query(String raw) {
        Map<String, String> q = new LinkedHashMap<>();
        if (raw == null) return q;
        for (String part : raw.split("&")) {
            if (part.isEmpty()) continue;
            int eq = part.indexOf('=');
            String k = URLDecoder.decode(eq < 0 ? part : part.substring(0, eq), StandardCharsets.UTF_8);
            String v = eq < 0 ? "" : URLDecoder.decode(part.substring(eq + 1), StandardCharsets.UTF_8);
            q.put(k, v);
        }
        return q;
    }

    static void send(HttpExchange ex, int code, String ctype, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        if (ctype != null) ex.getResponseHeaders().set("Content-Type", ctype);
        boolean head = ex.getRequestMethod().equals("HEAD");
        ex.sendResponseHeaders(code, head || b.length == 0 ? -1 : b.length);
        if (!head && b.length > 0) try (OutputStream os = ex.getResponseBody()) { os.write(b); }
    }

    static String quote(String s) { return Json.write(s); }

    // ---------------------------------------------------------------- minimal JSON
    static final class Json {
        final String s; int i;
        Json(String s) { this.s = s; }

        static Object parse(String text) {
            Json p = new Json(text);
            p.ws();
            Object v = p.value();
            p.ws();
            if (p.i != p.s.length()) throw p.err("trailing characters");
            return v;
        }

        IllegalArgumentException err(String m) { return new IllegalArgumentException(m + " at offset " + i); }
        void ws() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }

        Object value() {
            if (i >= s.length()) throw err("unexpected end");
            char c = s.charAt(i);
            if (c == '{') {
                i++; Map<String, Object> m = new LinkedHashMap<>(); ws();
                if (peek('}')) { i++; return m; }
                while (true) {
                    ws(); if (!peek('"')) throw err("expected a string key");
                    String k = string(); ws(); expect(':'); ws(); m.put(k, value()); ws();
                    if (peek(',')) { i++; continue; }
                    expect('}'); return m;
                }
            }
            if (c == '[') {
                i++; List<Object> l = new ArrayList<>(); ws();
                if (peek(']')) { i++; return l; }
                while (true) {
                    ws(); l.add(value()); ws();
                    if (peek(',')) { i++; continue; }
                    expect(']'); return l;
                }
            }
            if (c == '"') return string();
            if (s.startsWith("true", i)) { i += 4; return Boolean.TRUE; }
            if (s.startsWith("false", i)) { i += 5; return Boolean.FALSE; }
            if (s.startsWith("null", i)) { i += 4; return null; }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            String n = s.substring(start, i);
            if (n.isEmpty()) throw err("unexpected character");
            try {
                return n.matches("-?\\d+") ? (Object) Long.parseLong(n) : (Object) Double.parseDouble(n);
            } catch (NumberFormatException e) { throw err("bad number " + n); }
        }

        boolean peek(char c) { return i < s.length() && s.charAt(i) == c; }
        void expect(char c) { if (!peek(c)) throw err("expected '" + c + "'"); i++; }

        String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (true) {
                if (i >= s.length()) throw err("unterminated string");
                char c = s.charAt(i++);
                if (c == '"') return b.toString();
                if (c != '\\') { b.append(c); continue; }
                if (i >= s.length()) throw err("unterminated escape");
                char e = s.charAt(i++);
                switch (e) {
                    case 'n': b.append('\n'); break;
                    case 't': b.append('\t'); break;
                    case 'r': b.append('\r'); break;
                    case 'b': b.append('\b'); break;
                    case 'f': b.append('\f'); break;
                    case 'u':
                        if (i + 4 > s.length()) throw err("bad unicode escape");
                        b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
                    default: b.append(e);
                }
            }
        }

        static String write(Object v) { StringBuilder b = new StringBuilder(); write(b, v); return b.toString(); }

        static void write(StringBuilder b, Object v) {
            if (v == null) b.append("null");
            else if (v instanceof String) {
                b.append('"');
                for (char c : ((String) v).toCharArray()) {
                    if (c == '"' || c == '\\') b.append('\\').append(c);
                    else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
                b.append('"');
            } else if (v instanceof Map) {
                b.append('{'); boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                    if (!first) b.append(','); first = false;
                    write(b, String.valueOf(e.getKey())); b.append(':'); write(b, e.getValue());
                }
                b.append('}');
            } else if (v instanceof List) {
                b.append('['); boolean first = true;
                for (Object o : (List<?>) v) { if (!first) b.append(','); first = false; write(b, o); }
                b.append(']');
            } else b.append(v);
        }
    }
}

// Reference for tests/maven_differential.rs: Maven's own ComparableVersion.
// Protocol: see tests/support/mod.rs. Answers, per version, the hex of
// getCanonical(); per pair, the sign of compareTo and whether equals() holds.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import org.apache.maven.artifact.versioning.ComparableVersion;

public class MavenCompare {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintWriter out = new PrintWriter(System.out);
        int n = Integer.parseInt(in.readLine().trim());
        ComparableVersion[] versions = new ComparableVersion[n];
        for (int i = 0; i < n; i++) {
            versions[i] = new ComparableVersion(new String(unhex(in.readLine().trim()), StandardCharsets.UTF_8));
            out.println(hex(versions[i].getCanonical().getBytes(StandardCharsets.UTF_8)));
        }
        String line;
        while ((line = in.readLine()) != null) {
            String[] ij = line.trim().split(" ");
            ComparableVersion a = versions[Integer.parseInt(ij[0])];
            ComparableVersion b = versions[Integer.parseInt(ij[1])];
            out.println(Integer.signum(a.compareTo(b)) + " " + (a.equals(b) ? 1 : 0));
        }
        out.flush();
    }

    static byte[] unhex(String s) {
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return b;
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) {
            s.append(String.format("%02x", x & 0xff));
        }
        return s.toString();
    }
}

# Reference for tests/rubygems_differential.rs: RubyGems' own Gem::Version.
# Protocol: see tests/support/mod.rs. Answers, per version, "0" if
# Gem::Version.correct? is false, else "1 <prerelease?> <hex of canonical
# segments joined with .>"; per pair, the sign of <=>.
require "rubygems"

$stdin.binmode
n = Integer($stdin.gets)
versions = Array.new(n) do
  text = [$stdin.gets.strip].pack("H*").force_encoding(Encoding::UTF_8)
  if Gem::Version.correct?(text)
    v = Gem::Version.new(text)
    puts "1 #{v.prerelease? ? 1 : 0} #{v.canonical_segments.join(".").unpack1("H*")}"
    v
  else
    puts "0"
    nil
  end
end
while (line = $stdin.gets)
  i, j = line.split.map { |x| Integer(x) }
  puts(versions[i] <=> versions[j])
end

<?php
// Reference for tests/composer_differential.rs: composer/semver's
// VersionParser::normalize and Comparator, as Debian installs them.
// Protocol: see tests/support/mod.rs. Answers, per version, "0" if normalize
// throws, else "1 <hex of the normalised version>"; per pair of normalised
// versions, Comparator's lessThan, equalTo and greaterThan as 0/1.
$autoload = getenv('COMPOSER_SEMVER_AUTOLOAD') ?: '/usr/share/php/Composer/Semver/autoload.php';
require $autoload;

use Composer\Semver\Comparator;
use Composer\Semver\VersionParser;

$parser = new VersionParser();
$n = (int) fgets(STDIN);
$normalized = array();
for ($i = 0; $i < $n; $i++) {
    $text = hex2bin(trim(fgets(STDIN)));
    try {
        $normalized[$i] = $parser->normalize($text);
        echo '1 ', bin2hex($normalized[$i]), "\n";
    } catch (\UnexpectedValueException $e) {
        $normalized[$i] = null;
        echo "0\n";
    }
}
while (($line = fgets(STDIN)) !== false) {
    list($i, $j) = array_map('intval', explode(' ', trim($line)));
    $a = $normalized[$i];
    $b = $normalized[$j];
    echo (int) Comparator::lessThan($a, $b), ' ', (int) Comparator::equalTo($a, $b), ' ',
        (int) Comparator::greaterThan($a, $b), "\n";
}

#!/usr/bin/env bash
# Regenerates the synthetic Korean speech set of tests/telephony/audio/ with espeak-ng and sox.
# The outputs are committed, so tests and `make asr-eval` need neither tool; rerun this only to change the set.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=tests/telephony/audio
EDGE=$OUT/edge
TSV=$OUT/transcripts.tsv
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

rm -rf "$OUT"
mkdir -p "$OUT" "$EDGE"
printf 'file\tduration\ttext\n' >"$TSV"

# espeak-ng speaks at 22.05 kHz with long silences around the words: resample (-G: without clipping) to 16 kHz mono 16-bit, trim the
# silence to keep the folder small (~3 MB), and pad 0.1 s back so no onset is cut.
to_model_wav() {
    sox -G "$1" -r 16000 -c 1 -b 16 "$2" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.1 0.1
}

# say NAME RATE TEXT [VOICE]: one clip; only Korean clips go into transcripts.tsv.
say() {
    local name=$1 rate=$2 text=$3 voice=${4:-ko} dir=$OUT
    [[ $voice == ko ]] || dir=$EDGE
    espeak-ng -v "$voice" -s "$rate" -w "$WORK/raw.wav" "$text"
    to_model_wav "$WORK/raw.wav" "$dir/$name.wav"
    if [[ $voice == ko ]]; then
        printf '%s.wav\t%.2f\t%s\n' "$name" "$(soxi -D "$dir/$name.wav")" "$text" >>"$TSV"
    fi
}

# The 25 gu in the order of civic/districts.py district_names().
DISTRICTS=(종로구 중구 용산구 성동구 광진구 동대문구 중랑구 성북구 강북구 도봉구 노원구 은평구 서대문구 마포구
    양천구 강서구 구로구 금천구 영등포구 동작구 관악구 서초구 강남구 송파구 강동구)
# The phone's category buttons (domain.yml utter_ask_category), "·" said as a space.
CATEGORIES=("불법 주정차" "불법 현수막 광고물" "쓰레기 무단투기" "보도블록 파손" "가로등 보안등 고장" "소음" "하수구"
    "도시 시설물" "공사장" "안전 위험")
YESNO=(네 예 아니요 맞아요)
SENTENCES=(
    "합정역 2번 출구 앞에 불법 주차된 차가 있어요"
    "우리 집 앞 가로등이 꺼져 있어요"
    "골목에 쓰레기를 버리고 갔어요"
    "보도블록이 깨져서 위험해요"
    "밤마다 공사 소음이 심해요"
    "하수구 냄새가 많이 나요"
    "버스 정류장 의자가 부서졌어요"
    "전봇대에 현수막이 붙어 있어요"
    "신호등이 고장 났어요"
    "도로에 구멍이 생겼어요"
    "공원 벤치가 망가졌어요"
    "맨홀 뚜껑이 열려 있어요"
    "상가 앞에 광고물이 너무 많아요"
    "학교 앞에 차가 계속 서 있어요"
    "공사장 가림막이 쓰러질 것 같아요"
)

for rate in 150 180; do
    for i in "${!DISTRICTS[@]}"; do
        say "$(printf 'district_%02d_s%d' $((i + 1)) "$rate")" "$rate" "${DISTRICTS[$i]}"
    done
    for i in "${!CATEGORIES[@]}"; do
        say "$(printf 'category_%02d_s%d' $((i + 1)) "$rate")" "$rate" "${CATEGORIES[$i]}"
    done
    for i in "${!YESNO[@]}"; do
        say "$(printf 'yesno_%02d_s%d' $((i + 1)) "$rate")" "$rate" "${YESNO[$i]}"
    done
    say "operator_s$rate" "$rate" "상담원"
done
for i in "${!SENTENCES[@]}"; do
    say "$(printf 'sentence_%02d_s170' $((i + 1)))" 170 "${SENTENCES[$i]}"
done

# Bad inputs (not in transcripts.tsv): nothing, line noise (-R: the same noise every run), foreign callers.
sox -n -r 16000 -c 1 -b 16 "$EDGE/silence_2s.wav" trim 0 2
sox -R -n -r 16000 -c 1 -b 16 "$EDGE/noise_2s.wav" synth 2 whitenoise vol 0.3
say english 150 "Hello, I want to report a broken street light." en
say japanese 150 "すみません、にほんごで おねがいします" ja

echo "$(($(wc -l <"$TSV") - 1)) clips in $TSV, $(du -sh "$OUT" | cut -f1) in $OUT"

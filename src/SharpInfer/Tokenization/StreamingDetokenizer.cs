namespace SharpInfer.Tokenization;

/// <summary>
/// Turns token ids, pushed one at a time, into text as soon as it is complete: the concatenation of everything
/// <see cref="Push"/> and <see cref="Flush"/> return equals <see cref="Tokenizer.Decode(ReadOnlySpan{int}, DecodeOptions)"/>
/// of all the ids with the same options. A chunk never ends inside a UTF-8 character: bytes of an unfinished character
/// (a multi-byte character split across byte tokens) wait for the rest; bytes that can no longer form a character
/// become U+FFFD. With space clean-up on, a space is held until the next bytes show whether it stays.
/// Allocates nothing per token except the returned strings (string.Empty when there is no new text).
/// Not thread-safe: one per sequence.
/// </summary>
internal sealed class StreamingDetokenizer
{
    private readonly Tokenizer _tokenizer;
    private readonly DecodeOptions _options;
    private readonly Utf8Assembler _utf8 = new();
    private readonly StreamingSpaceCleanup? _cleanup;
    private bool _started, _removeSpace, _heldEos;

    public StreamingDetokenizer(Tokenizer tokenizer, DecodeOptions? options = null)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        _options = options ?? DecodeOptions.Default;
        if (_options.CleanUpSpaces ?? tokenizer.Vocabulary.CleanSpaces) _cleanup = new StreamingSpaceCleanup(_utf8);
        Reset();
    }

    /// <summary>Adds one token; returns the text that became complete (often empty).</summary>
    public string Push(int id)
    {
        var v = _tokenizer.Vocabulary;
        if (!_started)
        {
            _started = true;
            if (_options.RemoveSpecial && v.AddBos && id == v.BosId)
            {
                _tokenizer.PieceBytes(id); // validates the id
                _removeSpace = false;
                return string.Empty;
            }
        }
        if (_heldEos)
        {
            // the EOS we held back was not the last token after all
            _heldEos = false;
            Append(v.EosId);
        }
        if (_options.RemoveSpecial && v.AddEos && id == v.EosId)
        {
            _tokenizer.PieceBytes(id);
            _heldEos = true;
            return string.Empty;
        }
        Append(id);
        return _utf8.TakeComplete();
    }

    /// <summary>Ends the sequence: returns whatever is still held (an unfinished character as U+FFFD).</summary>
    public string Flush()
    {
        _heldEos = false; // a trailing EOS is removed
        _cleanup?.Flush();
        string s = _utf8.TakeAll();
        Reset();
        return s;
    }

    /// <summary>Forgets everything and starts a new sequence.</summary>
    public void Reset()
    {
        _utf8.Clear();
        _cleanup?.Clear();
        _started = false;
        _heldEos = false;
        _removeSpace = _tokenizer.Vocabulary.AddSpacePrefix && _options.StripLeadingSpace;
    }

    private void Append(int id)
    {
        var piece = _tokenizer.PieceBytes(id, _options.RendersSpecial(id));
        if (_removeSpace && !piece.IsEmpty && piece[0] == ' ') piece = piece[1..];
        _removeSpace = false;
        if (_cleanup != null) _cleanup.Push(piece);
        else _utf8.Push(piece);
    }
}
